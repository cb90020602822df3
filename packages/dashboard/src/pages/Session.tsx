export function SessionPage({ sessionId }: { sessionId: string }) {
  return (
    <section>
      <h1>{sessionId}</h1>
    </section>
  );
}
