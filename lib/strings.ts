/**
 * Strings kept for long (an acceptor's names, guard ids and node ids) are copied out of the frame they came
 * in. msgpackr decodes the strings of a frame as slices of one long string, and a slice keeps that whole
 * string alive: 100k kept names and guard ids held on to about 11 MB of frame text. A JSON round trip is
 * the cheapest way JavaScript has to make a string with its own storage; strings shorter than 13
 * characters are never slices (V8 copies them), so they are kept as they are.
 */

/** Below this length a substring is always a copy (V8's SlicedString::kMinLength). */
const MIN_SLICE = 13;

/** `s`, with storage of its own. */
export function ownCopy(s: string): string {
  return s.length < MIN_SLICE ? s : (JSON.parse(JSON.stringify(s)) as string);
}
