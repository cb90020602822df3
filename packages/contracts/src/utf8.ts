/**
 * UTF-8 size of a string, the same in Node and browsers (no `Buffer`: the contracts are bundled
 * into @tether/client, which runs in both).
 */
const encoder = new TextEncoder();

export function utf8ByteLength(text: string): number {
  return encoder.encode(text).length;
}
