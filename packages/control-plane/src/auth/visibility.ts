/**
 * Which nodes a participant may see, as SQL: the nodes they own and the nodes attached, in any
 * state, to sessions they are an active member of (exactly the nodes a roster they can read
 * shows). Admins see every node; callers skip these conditions for them. One rule, read by the
 * registry (`nodes/queries.ts`) and the event feed (`events/feed.ts`), so a node and its events
 * are visible to the same participants.
 *
 * `viewer` is an SQL expression for a participant id: a parameter, or a column when checking
 * many viewers at once.
 */

/**
 * One node, the outer query's `nodes n` row, is visible to `viewer`: owner, or co-member of a
 * session it has an attachment to.
 */
export function visibleNode(viewer: string): string {
  return `(n.owner_participant_id = ${viewer} OR EXISTS (
    SELECT 1 FROM runtime_node_attachments va
      JOIN session_memberships vm ON vm.session_id = va.session_id
     WHERE va.node_id = n.node_id AND vm.participant_id = ${viewer} AND vm.state = 'active'))`;
}

/**
 * The same rule as a set of node ids (a subquery), for pages and the event feed: built from the
 * owner index and the caller's memberships, so a member's list never walks the whole fleet.
 */
export function visibleNodeIdsSql(viewer: string): string {
  return `SELECT vo.node_id FROM nodes vo WHERE vo.owner_participant_id = ${viewer}
    UNION ALL
    SELECT va.node_id FROM session_memberships vm
      JOIN runtime_node_attachments va ON va.session_id = vm.session_id
     WHERE vm.participant_id = ${viewer} AND vm.state = 'active'`;
}
