export function PairingPage() {
  return (
    <section>
      <h1>Pairing</h1>
    </section>
  );
}
