/**
 * Holds a process to the CPU share Lambda gives a function of a given memory size (one vCPU at 1,769 MB,
 * in proportion below it: 0.145 of a core at 256 MB), with the cgroup CPU controller: cgroup v2's
 * `cpu.max`, or v1's `cpu.cfs_quota_us` over `cpu.cfs_period_us` where the machine mounts v1 (this one
 * does). Needs root; where it cannot, the caller is told and measures uncapped.
 */
import { existsSync, mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const FULL_CORE_MB = 1769;
const PERIOD_US = 100_000;

export const cpuShareOf = (memoryMb: number) => Math.min(1, memoryMb / FULL_CORE_MB);

/** @returns a function that removes the group once the process has exited, or undefined when it cannot cap. */
export function capCpu(pid: number, share: number): (() => void) | undefined {
  const quota = Math.round(share * PERIOD_US);
  const v2 = '/sys/fs/cgroup/cgroup.controllers';
  const dir = existsSync(v2)
    ? join('/sys/fs/cgroup', `oauth-mailer-bench-${pid}`)
    : join('/sys/fs/cgroup/cpu', `oauth-mailer-bench-${pid}`);
  try {
    mkdirSync(dir);
    if (existsSync(v2)) writeFileSync(join(dir, 'cpu.max'), `${quota} ${PERIOD_US}`);
    else {
      writeFileSync(join(dir, 'cpu.cfs_period_us'), String(PERIOD_US));
      writeFileSync(join(dir, 'cpu.cfs_quota_us'), String(quota));
    }
    writeFileSync(join(dir, 'cgroup.procs'), String(pid));
    return () => {
      try {
        rmdirSync(dir);
      } catch {
        // Still has a process in it: the kernel refuses; left for the next boot.
      }
    };
  } catch {
    return undefined;
  }
}
