/**
 * Group commit of accepts: inserts collected for `groupCommitMs` (or until `groupCommitMaxSize`) are
 * written in one SQLite transaction, then each caller is answered with its own result or error.
 */
import type { InsertResult, LicenseRecord, NewLicenseItem } from "../domain.js";
import type { LicenseStore } from "../store/types.js";

export interface GroupCommitOptions {
  groupCommitMs: number;
  groupCommitMaxSize: number;
}

export interface GroupCommitHooks {
  /** A license was created by the commit (before its caller is answered). */
  created(license: LicenseRecord): void;
  /** The commit is answered; `chainIds` are the chains that got new licenses. */
  committed(chainIds: ReadonlySet<number>): void;
}

export class GroupCommit {
  /** Inserts waiting for the next commit. */
  private group: {
    item: NewLicenseItem;
    resolve: (result: InsertResult) => void;
    reject: (error: unknown) => void;
  }[] = [];
  /** Cancels the scheduled commit of the current group. */
  private cancelTimer: (() => void) | undefined;

  constructor(
    private readonly store: Pick<LicenseStore, "insertLicenses">,
    private readonly options: GroupCommitOptions,
    private readonly hooks: GroupCommitHooks,
  ) {}

  /** Joins the current group; resolves after its transaction committed. */
  enqueue(item: NewLicenseItem): Promise<InsertResult> {
    return new Promise((resolve, reject) => {
      this.group.push({ item, resolve, reject });
      if (this.group.length >= this.options.groupCommitMaxSize) this.commit();
      else if (!this.cancelTimer) {
        const wait = this.options.groupCommitMs;
        if (wait === 0) {
          const immediate = setImmediate(() => this.commit());
          this.cancelTimer = () => clearImmediate(immediate);
        } else {
          const timer = setTimeout(() => this.commit(), wait);
          this.cancelTimer = () => clearTimeout(timer);
        }
      }
    });
  }

  /** Commits the collected inserts in one transaction, then answers each of them. */
  commit(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    const group = this.group.splice(0);
    if (group.length === 0) return;
    let results: (InsertResult | { error: unknown })[];
    try {
      results = this.store.insertLicenses(group.map((g) => g.item));
    } catch (error) {
      for (const g of group) g.reject(error);
      return;
    }
    const chainIds = new Set<number>();
    for (const [i, g] of group.entries()) {
      const result = results[i]!;
      if ("error" in result) {
        g.reject(result.error);
        continue;
      }
      if (result.created) {
        this.hooks.created(result.license);
        chainIds.add(result.license.chainId);
      }
      g.resolve(result);
    }
    this.hooks.committed(chainIds);
  }
}
