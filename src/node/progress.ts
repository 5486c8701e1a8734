// A progress line for long reads (downloads, loading the weights): a bar on a terminal,
// redrawn in place at most 10 times a second; elsewhere (a log, a pipe) a line per tenth.
// Shows the bytes, the speed and the time left.

export interface ProgressOut {
  write(s: string): unknown;
  isTTY?: boolean;
}

export interface Progress {
  /** Bytes done so far (and the total, when it is only known once the work starts). */
  update(bytes: number, total?: number): void;
  finish(): void;
}

const mb = (n: number) => (n / 1e6).toFixed(1);

export function progressBar(name: string, total: number, out: ProgressOut): Progress {
  const start = Date.now();
  let lastDraw = 0;
  let lastDecile = -1;
  let current = 0;
  let startBytes = -1; // what was there when this run began (a resume), for the speed
  const draw = () => {
    const frac = total > 0 ? Math.min(1, current / total) : 1;
    const secs = Math.max(1e-3, (Date.now() - start) / 1000);
    const speed = Math.max(0, current - startBytes) / secs;
    const left = speed > 0 ? Math.max(0, total - current) / speed : Infinity;
    const eta = Number.isFinite(left)
      ? ` ${Math.floor(left / 60)}:${String(Math.round(left % 60)).padStart(2, '0')} left`
      : '';
    const width = 30;
    const filled = Math.round(frac * width);
    return `${name} [${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${(frac * 100).toFixed(1)}% ${mb(current)}/${mb(total)} MB ${mb(speed)} MB/s${eta}`;
  };
  return {
    update(n: number, newTotal?: number) {
      if (newTotal !== undefined) total = newTotal;
      current = n;
      if (startBytes < 0) startBytes = n;
      if (out.isTTY) {
        if (Date.now() - lastDraw > 100) {
          lastDraw = Date.now();
          out.write(`\r${draw()}`);
        }
      } else {
        const decile = Math.floor((10 * n) / Math.max(1, total));
        if (decile > lastDecile) {
          lastDecile = decile;
          out.write(`${draw()}\n`);
        }
      }
    },
    finish() {
      if (out.isTTY) out.write(`\r${draw()}\n`);
    },
  };
}
