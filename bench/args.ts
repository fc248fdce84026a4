/** Command-line values of the benches: a bad one stops the run with its name, before anything is measured. */

/** `text` as an integer ≥ `min`; `name` says which option it came from. */
export function integer(name: string, text: string | undefined, min: number): number {
  const n = Number(text);
  if (text === undefined || text.trim() === '' || !Number.isInteger(n) || n < min) {
    throw new Error(`${name} must be an integer ≥ ${min}; got ${JSON.stringify(text)}`);
  }
  return n;
}
