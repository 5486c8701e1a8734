// The learning rate at each step: linear warm-up from 0 over `warmup` steps, then constant or
// cosine decay to 0 at `total` (the Hugging Face Trainer's get_cosine_schedule_with_warmup
// and get_constant_schedule_with_warmup). step counts from 0: the rate of the first update.

export type ScheduleKind = 'cosine' | 'constant' | 'linear';

export function learningRate(
  kind: ScheduleKind,
  lr: number,
  step: number,
  warmup: number,
  total: number,
): number {
  if (step < warmup) return (lr * step) / Math.max(1, warmup);
  if (kind === 'constant') return lr;
  const progress = (step - warmup) / Math.max(1, total - warmup);
  if (kind === 'linear') return lr * Math.max(0, 1 - progress);
  return lr * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
}
