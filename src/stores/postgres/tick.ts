/**
 * Calls that arrive in the same turn of the event loop run as one batch (one statement or transaction). A call
 * naming an id already in the batch waits for the next turn, so each item settles as if it were alone.
 */
export class TickGroup<I extends { id: string }, R> {
  private calls: { items: I[]; resolve: (results: R[]) => void; reject: (error: unknown) => void }[] = [];
  private scheduled = false;

  constructor(private readonly run: (items: I[]) => Promise<R[]>) {}

  add(items: I[]): Promise<R[]> {
    return new Promise((resolve, reject) => {
      this.calls.push({ items, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => void this.flush());
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    const ids = new Set<string>();
    const calls: typeof this.calls = [];
    while (this.calls.length) {
      const call = this.calls[0] as (typeof this.calls)[number];
      if (call.items.some((i) => ids.has(i.id))) break;
      for (const i of call.items) ids.add(i.id);
      calls.push(call);
      this.calls.shift();
    }
    if (this.calls.length) this.schedule();
    try {
      const results = await this.run(calls.flatMap((c) => c.items));
      let at = 0;
      for (const call of calls) {
        call.resolve(results.slice(at, at + call.items.length));
        at += call.items.length;
      }
    } catch (error) {
      for (const call of calls) call.reject(error);
    }
  }
}
