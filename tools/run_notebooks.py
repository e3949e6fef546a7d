"""Run every notebook in nbs/ once, as `nbdev_test` does, and keep the executed notebooks (not part of the package).

  python tools/run_notebooks.py                        # all notebooks, 2 at a time, slow cells included
  python tools/run_notebooks.py --only 00_core,00a_stats --workers 1
  python tools/run_notebooks.py --flags ''             # skip the cells marked `#| slow`

Cells are executed the way nbdev 2's `nbdev.test.test_nb` executes them: execnb's `CaptureShell`, from the notebook's
folder with the project root on `sys.path` and `IN_TEST=1`, `#| <flag>` cells skipped for the flags in settings.ini's
`tst_flags` unless forced with `--flags`, `#| eval: false` cells and `nbdev_export()` calls skipped, stopping at the
first error. Unlike `nbdev_test`, each notebook runs in a fresh process (nothing leaks from one notebook into the
next, whatever order they run in), with `OMP_NUM_THREADS=1` unless already set, and its outputs are kept:
`_build/executed/<name>.ipynb` (the source cells unchanged, `#|` directives included, with their outputs), which
`tools/build_docs.py` turns into the docs site. A notebook that fails is written to `_build/failed/<name>.ipynb`
(outputs up to the failing cell) and any older `_build/executed/<name>.ipynb` is removed.

Prints one line per notebook as it finishes, then a timing table; exits 1 naming the failing notebooks and their
errors. Environment: NBDEV_TEST_FLAGS and NBDEV_TEST_WORKERS give the defaults of --flags and --workers.
"""
import argparse, json, multiprocessing, os, sys, time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / '_build'
EXECUTED, FAILED = BUILD / 'executed', BUILD / 'failed'
TIMINGS = BUILD / 'timings.json'   # last run's seconds per notebook: the slowest start first next time


def notebooks(only=None):
    "The notebooks nbdev_test would test (nbdev's nbglob over nbs/, minus folders holding a `.notest`), or those named in `only`"
    from nbdev.doclinks import nbglob
    files = [Path(f).resolve() for f in nbglob(ROOT / 'nbs', as_path=True)]
    files = sorted(f for f in files if not (f.parent / '.notest').exists())
    if only:
        by_name = {f.stem: f for f in files}
        missing = [n for n in only if n not in by_name]
        if missing: sys.exit(f'--only: no notebook named {", ".join(missing)} in nbs/ (names without .ipynb, e.g. 00_core)')
        files = [by_name[n] for n in only]
    return files


def _outputs_to_json(outputs):
    from execnb.nbio import nb2dict
    return json.loads(json.dumps(nb2dict(list(outputs))))


def run_one(fn: str, skip_flags: list, force_flags: list):
    """Execute notebook `fn` like `nbdev.test.test_nb`; write it with its outputs.
    Returns (name, ok, seconds, error text or '')."""
    from execnb.nbio import read_nb
    from execnb.shell import CaptureShell
    from fastcore.basics import str2bool
    from fastcore.xtras import working_directory
    from nbdev.frontmatter import FrontmatterProc
    from nbdev.process import NBProcessor, nb_lang

    fn = Path(fn)
    os.environ['IN_TEST'] = '1'
    if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))     # nbdev_test: basepath=config_path
    flags = set(skip_flags) - set(force_flags)
    start = time.time()
    raw = json.loads(fn.read_text(encoding='utf-8'))
    # frontmatter (skip_exec) as nbdev_test reads it; that processing drops the title cell, so run a separate copy
    fm = getattr(NBProcessor(fn, procs=FrontmatterProc, process=True).nb, 'frontmatter_', {})
    nb = NBProcessor(nb=read_nb(fn)).nb    # same cells as `raw`, `#|` lines removed into cell.directives_
    assert len(nb.cells) == len(raw['cells'])

    def _no_eval(cell):
        if cell.cell_type != 'code': return True
        if 'nbdev_export' + '(' in cell.source: return True
        direc = getattr(cell, 'directives_', {}) or {}
        if direc.get('eval:', [''])[0].lower() == 'false': return True
        return flags & direc.keys()

    err = ''
    if str2bool(fm.get('skip_exec', False)) or nb_lang(nb) != 'python': ok = True
    else:
        k = CaptureShell(fn)
        try:
            with working_directory(fn.parent):
                k.run_all(nb, exc_stop=True, preproc=_no_eval)
            ok = True
        except BaseException:
            import traceback
            ok, err = False, (k.prettytb(fname=fn) if k.exc is not None else traceback.format_exc())
    secs = time.time() - start
    for cell, out in zip(raw['cells'], nb.cells):
        if cell['cell_type'] == 'code': cell['outputs'] = _outputs_to_json(out.get('outputs', []))
    dest = (EXECUTED if ok else FAILED) / fn.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(raw, indent=1, ensure_ascii=False) + '\n', encoding='utf-8')
    if not ok: (EXECUTED / fn.name).unlink(missing_ok=True)
    else: (FAILED / fn.name).unlink(missing_ok=True)
    return fn.stem, ok, secs, err


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--only', default='', help='comma-separated notebook names (e.g. 00_core,00a_stats); default: all')
    p.add_argument('--flags', default=os.environ.get('NBDEV_TEST_FLAGS', 'slow'),
                   help="space-separated test flags to run although settings.ini's tst_flags skip them (default: $NBDEV_TEST_FLAGS or 'slow')")
    p.add_argument('--workers', type=int, default=int(os.environ.get('NBDEV_TEST_WORKERS', '2')),
                   help='notebooks run at once, each in its own process (default: $NBDEV_TEST_WORKERS or 2)')
    a = p.parse_args(argv)
    from nbdev.config import get_config
    skip_flags = get_config(path=ROOT).tst_flags.split()
    force_flags = a.flags.split()
    files = notebooks([n.strip().removesuffix('.ipynb') for n in a.only.split(',') if n.strip()])
    if not files: sys.exit('no notebooks to run')
    past = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
    files.sort(key=lambda f: -past.get(f.stem, 1e9))   # slowest (or never timed) first: the pool finishes sooner
    os.environ.setdefault('OMP_NUM_THREADS', '1')        # one torch thread per notebook, or parallel notebooks oversubscribe the CPU
    os.environ.setdefault('MPLBACKEND', 'Agg')
    workers = max(1, min(a.workers, len(files)))
    print(f'running {len(files)} notebook(s), {workers} at a time (OMP_NUM_THREADS={os.environ["OMP_NUM_THREADS"]}, '
          f'skip flags {skip_flags}, forced {force_flags}) -> {EXECUTED.relative_to(ROOT)}/', flush=True)

    results, t0 = [], time.time()
    # a fresh process per notebook (spawn, one task per child), as a user's fresh kernel
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context('spawn'), max_tasks_per_child=1) as ex:
        futs = {ex.submit(run_one, str(f), skip_flags, force_flags): f for f in files}
        for i, fut in enumerate(as_completed(futs), 1):
            f = futs[fut]
            try: res = fut.result()
            except BaseException as e:   # the worker itself died (killed, out of memory...)
                res = (f.stem, False, float('nan'), f'{type(e).__name__}: {e} (the process running {f.name} died)')
            results.append(res)
            print(f'[{i}/{len(files)}] {"ok  " if res[1] else "FAIL"} {res[0]:<24} {res[2]:7.1f} s', flush=True)
    wall = time.time() - t0

    past.update({n: s for n, ok, s, _ in results if ok})
    BUILD.mkdir(exist_ok=True)
    TIMINGS.write_text(json.dumps(past, indent=1, sort_keys=True) + '\n')
    print(f'\n{"notebook":<24} {"status":<6} {"seconds":>8}')
    for n, ok, s, _ in sorted(results, key=lambda r: -r[2] if r[2] == r[2] else 0):
        print(f'{n:<24} {"ok" if ok else "FAILED":<6} {s:8.1f}')
    print(f'{"total":<24} {"":<6} {sum(r[2] for r in results if r[2] == r[2]):8.1f}  ({wall:.1f} s wall, {workers} workers)')

    failed = [r for r in results if not r[1]]
    if failed:
        for n, _, _, err in failed: sys.stderr.write(f'\n{"=" * 30} {n}.ipynb failed\n{err}\n')
        sys.stderr.write(f'\nnotebooks that failed ({len(failed)}): {", ".join(r[0] + ".ipynb" for r in failed)}'
                         f' (partial outputs in {FAILED.relative_to(ROOT)}/)\n')
        return 1
    print(f'all {len(results)} notebook(s) ran; executed notebooks in {EXECUTED.relative_to(ROOT)}/')
    return 0


if __name__ == '__main__':
    sys.exit(main())
