/**
 * The versioned member list: the base of every majority. It changes one node at a time (a majority of
 * N and a majority of N+1 always overlap), and the highest version seen wins when lists are gossiped.
 */
import { ConfigError } from '../errors.js';
import type { MemberInfo, MemberList } from '../protocol/messages.js';

export class Membership {
  readonly #self: string;
  #list: MemberList;
  #ids: readonly string[];
  readonly #listeners = new Set<(ids: readonly string[]) => void>();

  constructor(self: string, initial: MemberList) {
    this.#self = self;
    this.#list = initial;
    this.#ids = initial.members.map((m) => m.id);
  }

  /** Calls `fn` after every change of the list (locally or by gossip); returns the unsubscribe function. */
  onChange(fn: (ids: readonly string[]) => void): () => void {
    this.#listeners.add(fn);
    return () => {
      this.#listeners.delete(fn);
    };
  }

  get self(): string {
    return this.#self;
  }

  /** Member ids, in list order. */
  ids(): readonly string[] {
    return this.#ids;
  }

  list(): MemberList {
    return this.#list;
  }

  has(id: string): boolean {
    return this.#ids.includes(id);
  }

  endpointOf(id: string): string | undefined {
    return this.#list.members.find((m) => m.id === id)?.endpoint;
  }

  /** Majority size of the current list. */
  quorum(): number {
    return Math.floor(this.#ids.length / 2) + 1;
  }

  /** Adopts a gossiped list if it is newer; returns whether it changed anything. */
  merge(list: MemberList): boolean {
    if (list.version <= this.#list.version) return false;
    this.#set(list);
    return true;
  }

  /** Adopts a list as is (a node joining takes the cluster's list, whatever its own version). */
  replace(list: MemberList): void {
    this.#set(list);
  }

  /** Adds one member (refused when it is already a member). */
  add(member: MemberInfo): MemberList {
    if (this.has(member.id)) throw new ConfigError('members', `already a member: ${member.id}`);
    return this.#set({ version: this.#list.version + 1, members: [...this.#list.members, member] });
  }

  /** Removes one member (refused when it is not a member or is the last one). */
  remove(id: string): MemberList {
    if (!this.has(id)) throw new ConfigError('members', `not a member: ${id}`);
    if (this.#ids.length === 1) throw new ConfigError('members', 'cannot remove the last member');
    return this.#set({ version: this.#list.version + 1, members: this.#list.members.filter((m) => m.id !== id) });
  }

  #set(list: MemberList): MemberList {
    this.#list = list;
    this.#ids = list.members.map((m) => m.id);
    for (const fn of [...this.#listeners]) fn(this.#ids);
    return list;
  }
}
