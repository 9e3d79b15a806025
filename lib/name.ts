/**
 * Name validation: a name is a string of 1..1024 UTF-8 bytes. Anything else is rejected with an
 * InvalidArgumentError before any state changes.
 */
import { InvalidArgumentError } from './errors.js';

/** Longest name, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 1024;

export function validateName(name: unknown, argument = 'name'): asserts name is string {
  if (typeof name !== 'string') throw new InvalidArgumentError(argument, `${argument} must be a string`);
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes === 0 || bytes > MAX_NAME_BYTES) {
    throw new InvalidArgumentError(argument, `${argument} must be 1..${MAX_NAME_BYTES} UTF-8 bytes`);
  }
  // A lone surrogate does not survive UTF-8 encoding: the name would change on the wire.
  if (!name.isWellFormed()) throw new InvalidArgumentError(argument, `${argument} must be well-formed Unicode`);
}
