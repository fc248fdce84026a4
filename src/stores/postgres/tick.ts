/**
 * Calls that arrive in the same turn of the event loop, run together: the one batching rule of this store
 * (sends, fails, and the worker's acks with its next claim share one statement and one commit each turn).
 * A call naming an id already taken this turn waits for the next turn, so each item settles as if alone.
 */
export class SameTick<C> {
  private calls: C[] = [];
  private scheduled = false;

  /** `ids` names what a call touches (none: it never conflicts); `run` gets the calls of one turn. */
  constructor(
    private readonly run: (calls: C[]) => void,
    private readonly ids: (call: C) => Iterable<string> = () => [],
  ) {}

  add(call: C): void {
    this.calls.push(call);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    const taken = new Set<string>();
    let n = 0;
    for (; n < this.calls.length; n++) {
      const ids = [...this.ids(this.calls[n] as C)];
      if (ids.some((id) => taken.has(id))) break;
      for (const id of ids) taken.add(id);
    }
    const batch = this.calls.splice(0, n);
    if (this.calls.length > 0) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
    this.run(batch);
  }
}

/** Hands each call of a batch its slice of the batch's answers (in call order, `size` items each). */
export function settleEach<R>(calls: { size: number; resolve: (results: R[]) => void }[], results: R[]): void {
  let at = 0;
  for (const call of calls) {
    call.resolve(results.slice(at, at + call.size));
    at += call.size;
  }
}
