export function SessionsPage() {
  return (
    <section>
      <h1>Sessions</h1>
    </section>
  );
}
