export function NodePage({ nodeId }: { nodeId: string }) {
  return (
    <section>
      <h1>{nodeId}</h1>
    </section>
  );
}
