import { v7 } from 'uuid';

/** A new message id: UUIDv7, unique and sortable by creation time (monotonic within a process). */
export const newId = (): string => v7();
