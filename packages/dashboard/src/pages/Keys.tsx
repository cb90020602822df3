export function KeysPage() {
  return (
    <section>
      <h1>Enrollment keys</h1>
    </section>
  );
}
