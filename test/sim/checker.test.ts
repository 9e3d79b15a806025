import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkHistory, heldAtEnd, type HistoryEvent } from './history.js';

const g = (name: string, owner: string, token: number, at: number): HistoryEvent => ({ type: 'grant', name, owner, token, at });
const e = (name: string, owner: string, token: number, at: number, reason = 'unregistered'): HistoryEvent =>
  ({ type: 'end', name, owner, token, at, reason });

test('checker: clean handoff history -> no violation', () => {
  const h = [g('a', 'o1', 1, 0), e('a', 'o1', 1, 10, 'handoff'), g('a', 'o2', 2, 10), e('a', 'o2', 2, 20), g('b', 'o1', 1, 5)];
  assert.equal(checkHistory(h), []);
});

test('checker: two owners with one token -> flagged', () => {
  const h = [g('a', 'o1', 5, 0), e('a', 'o1', 5, 10), g('a', 'o2', 5, 20)];
  const kinds = checkHistory(h).map((v) => v.kind);
  assert.ok(kinds.includes('two-owners-one-token'));
});

test('checker: token that does not rise -> flagged', () => {
  const h = [g('a', 'o1', 5, 0), e('a', 'o1', 5, 10), g('a', 'o2', 4, 20)];
  assert.equal(checkHistory(h).map((v) => v.kind), ['token-not-rising']);
});

test('checker: equal token for a new grant of the same owner -> flagged as not rising', () => {
  const h = [g('a', 'o1', 5, 0), e('a', 'o1', 5, 10), g('a', 'o1', 5, 20)];
  assert.equal(checkHistory(h).map((v) => v.kind), ['token-not-rising']);
});

test('checker: overlapping holders -> flagged', () => {
  const h = [g('a', 'o1', 1, 0), g('a', 'o2', 2, 5), e('a', 'o1', 1, 10, 'lost')];
  assert.ok(checkHistory(h).some((v) => v.kind === 'overlap'));
});

test('checker: end then grant at the same instant -> no overlap', () => {
  const h = [g('a', 'o1', 1, 0), e('a', 'o1', 1, 10, 'lost'), g('a', 'o2', 2, 10)];
  assert.equal(checkHistory(h), []);
});

test('checker: grant listed before the end of the same instant -> overlap', () => {
  const h = [g('a', 'o1', 1, 0), g('a', 'o2', 2, 10), e('a', 'o1', 1, 10, 'lost')];
  assert.equal(checkHistory(h).map((v) => v.kind), ['overlap']);
});

test('checker: a grant ended at the instant it was made -> no violation', () => {
  const h = [g('a', 'o1', 1, 5), e('a', 'o1', 1, 5, 'exit'), g('a', 'o2', 2, 9)];
  assert.equal(checkHistory(h), []);
});

test('checker: lost with no fault in the window -> flagged; with a fault -> fine', () => {
  const h = [g('a', 'o1', 1, 0), e('a', 'o1', 1, 100, 'lost')];
  const none = checkHistory(h, { faultBetween: () => false, lostWindow: 50 });
  assert.equal(none.map((v) => v.kind), ['lost-without-fault']);
  const some = checkHistory(h, { faultBetween: (from, to) => from <= 60 && to >= 60, lostWindow: 50 });
  assert.equal(some, []);
});

test('checker: end without grant -> flagged', () => {
  assert.equal(checkHistory([e('a', 'o1', 1, 3)]).map((v) => v.kind), ['end-without-grant']);
});

test('checker: heldAtEnd -> open registrations only', () => {
  const h = [g('a', 'o1', 1, 0), e('a', 'o1', 1, 10), g('a', 'o2', 2, 11), g('b', 'o3', 7, 1)];
  assert.equal([...heldAtEnd(h)].sort(), [['a', { owner: 'o2', token: 2 }], ['b', { owner: 'o3', token: 7 }]]);
});

test.run();
