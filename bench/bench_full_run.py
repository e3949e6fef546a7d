"""What a full-size run costs: the whole pipeline on a preset (default `synthetic-full`: 11,964 trials x 128 channels,
40 classes), timed stage by stage with each stage's peak resident memory, and optionally the same run on fewer trials
so that a stage growing worse than linearly in trials shows up as a per-trial cost that rises with the size.

    OMP_NUM_THREADS=2 python bench/bench_full_run.py --out runs/bench-full                    # ~ tens of minutes on 2 cores
    OMP_NUM_THREADS=2 python bench/bench_full_run.py --out runs/bench-full --trials 3000 11964  # the scaling check

Stages are the run's own ("[i/n] name" lines); the generators stage is split at the GAN's and the VAE's "trained" lines.
Memory is sampled from /proc/self/status (VmRSS) every 0.1 s: the peak within each stage, and the whole process's peak
(VmHWM). Results go to <out>/bench_full_run.json as well as the table printed.
"""
import argparse, json, re, threading, time
from pathlib import Path


def _rss_mb(field='VmRSS'):
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith(field + ':'): return int(line.split()[1]) / 1024
    return float('nan')


class StageClock:
    "A `say` hook: a new stage at each '[i/n] name' line (and at the generators' per-model lines); RSS peaks per stage."
    def __init__(self, echo=True):
        self.t0, self.rows, self.cur, self.peak, self.echo = time.time(), [], ('start', time.time()), 0.0, echo
        self._stop = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_mb()); time.sleep(0.1)

    def _close(self, name_next):
        name, t = self.cur
        self.rows.append(dict(stage=name, seconds=round(time.time() - t, 1), peak_rss_mb=round(max(self.peak, _rss_mb()))))
        self.cur, self.peak = (name_next, time.time()), _rss_mb()

    def __call__(self, msg, *a, **k):
        if self.echo: print(msg, flush=True)
        m = re.match(r'^\[(\d+)/(\d+)\] (.+?) \(\d+ s\)$', msg)
        if m: self._close(m.group(3)); return
        g = re.match(r'^\s+(GAN|VAE|diffusion) \(', msg)
        if g and self.cur[0].startswith('generators'):      # a generator finished: the time since the last mark was its training
            self.cur = (f'generators: {g.group(1)}', self.cur[1]); self._close('generators: saving the decoders')

    def finish(self):
        self._close('end'); self._stop.set()
        return [dict(r, stage='imports and set-up') if r['stage'] == 'start' else r for r in self.rows]


def one(preset, out, trials=None, echo=True):
    from brain2image.config import get_preset
    from brain2image.pipeline import run
    cfg = get_preset(preset)
    if trials: cfg['dataset'] = dict(cfg['dataset'], n_trials=int(trials))
    clock = StageClock(echo)
    t0 = time.time()
    m = run(cfg, out, progress=True, say=clock, command=f'bench/bench_full_run.py --preset {preset} --trials {trials}')
    rows = clock.finish()
    return dict(preset=preset, trials=m['dataset'].get('n_trials', trials), total_s=round(time.time() - t0, 1),
                peak_rss_mb=round(_rss_mb('VmHWM')), stages=rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--preset', default='synthetic-full')
    ap.add_argument('--out', default='runs/bench-full')
    ap.add_argument('--trials', type=int, nargs='*', default=[], help="run sizes (n_trials); none: the preset's own")
    ap.add_argument('--quiet', action='store_true')
    a = ap.parse_args()
    import torch
    res = []
    for n in (a.trials or [None]):
        out = Path(a.out) / f'n{n or "preset"}'
        res.append(one(a.preset, out, n, echo=not a.quiet))
    info = dict(threads=torch.get_num_threads(), device='cuda' if torch.cuda.is_available() else 'cpu', runs=res)
    Path(a.out).mkdir(parents=True, exist_ok=True)
    (Path(a.out) / 'bench_full_run.json').write_text(json.dumps(info, indent=1))
    names = list(dict.fromkeys(r['stage'] for x in res for r in x['stages']))
    print(f"\n{a.preset} on {info['device']}, {info['threads']} threads")
    head = ' | '.join(f"{x['trials']} trials: s / peak MB" for x in res)
    print(f'| stage | {head} |' + (' per-trial cost ratio |' if len(res) > 1 else ''))
    for s in names:
        cells, per = [], []
        for x in res:
            r = next((r for r in x['stages'] if r['stage'] == s), None)
            cells.append('-' if r is None else f"{r['seconds']} / {r['peak_rss_mb']}")
            if r is not None and x['trials']: per.append(r['seconds'] / x['trials'])
        ratio = f' {per[-1] / per[0]:.2f} |' if len(per) > 1 and per[0] > 0 else (' - |' if len(res) > 1 else '')
        print(f"| {s} | {' | '.join(cells)} |{ratio}")
    print('| total | ' + ' | '.join(f"{x['total_s']} / {x['peak_rss_mb']}" for x in res) + ' |')
    if len(res) > 1: print('per-trial cost ratio: (s per trial at the largest size) / (s per trial at the smallest); ~1 = linear, > 1.5 worth a look')


if __name__ == '__main__':
    main()
