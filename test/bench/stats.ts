// Small statistics and /proc readings shared by the benchmarks.
import { readFileSync } from 'node:fs'

export function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  if (s.length === 0) return NaN
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

export function max (xs: number[]): number { return Math.max(...xs) }

/** Nearest-rank percentile (p in 0–100) of an ascending array; NaN when empty. */
export function percentileSorted (sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!
}

/** Nearest-rank percentile (p in 0–100); NaN when empty. */
export function percentile (xs: number[], p: number): number {
  return percentileSorted([...xs].sort((a, b) => a - b), p)
}

/** Resident set size of a process, in MB. */
export function rssMb (pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN)
  return kb / 1024
}

/** CPU time (user + system) of a process, in ms. */
export function cpuMs (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const ticks = Number(fields[11]) + Number(fields[12]) // utime, stime
  return ticks * 10 // USER_HZ is 100 on Linux
}

export const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/** Memory private to a process (not shared with others, e.g. the node binary's pages), in MB. */
export function privateMb (pid: number): number {
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8')
  const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(rollup)?.[1] ?? 0)
  return (kb('Private_Clean') + kb('Private_Dirty')) / 1024
}
