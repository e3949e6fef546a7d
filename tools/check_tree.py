"""Repository hygiene checks used by tools/test.sh (not part of the package).

  python tools/check_tree.py export   # brain2image/ == what nbdev_export writes from nbs/
  python tools/check_tree.py clean    # every notebook is as nbdev_clean leaves it, and small
  python tools/check_tree.py readme   # README.md == nbconvert of nbs/index.ipynb
  python tools/check_tree.py fix      # export, clean and rebuild README in place
"""
import filecmp, json, shutil, subprocess, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_NB_BYTES = 300_000   # a notebook bigger than this carries heavy outputs (plotly.js, images, widget state)

def _tree_diff(a: Path, b: Path):
    d = filecmp.dircmp(a, b, ignore=['__pycache__'])
    out = [f'only in {d.left}: {x}' for x in d.left_only] + [f'only in {d.right}: {x}' for x in d.right_only]
    out += [f'differs: {x}' for x in d.diff_files]
    for sub in d.common_dirs: out += _tree_diff(a / sub, b / sub)
    return out

def check_export():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for p in ['nbs', 'brain2image', 'settings.ini', 'setup.py', 'README.md']:
            (shutil.copytree if (ROOT / p).is_dir() else shutil.copy)(ROOT / p, tmp / p)
        subprocess.run([sys.executable, '-c', 'from nbdev.doclinks import nbdev_export; nbdev_export()'], cwd=tmp, check=True)
        diff = _tree_diff(ROOT / 'brain2image', tmp / 'brain2image')
    if diff:
        sys.exit('brain2image/ is not what nbs/ exports (hand edit, or notebook not exported); run nbdev_export:\n  ' + '\n  '.join(diff))
    print('ok: brain2image/ matches nbs/')

def check_clean():
    from nbdev.clean import clean_nb
    from nbdev.config import get_config
    bad = []
    for nb in sorted((ROOT / 'nbs').rglob('*.ipynb')):
        if '.ipynb_checkpoints' in nb.parts: continue
        text = nb.read_text(encoding='utf-8')
        d = json.loads(text); before = json.dumps(d, sort_keys=True)
        clean_nb(d, clear_all=get_config().clear_all)
        if json.dumps(d, sort_keys=True) != before: bad.append(f'{nb.relative_to(ROOT)}: not cleaned (run nbdev_clean)')
        if len(text.encode()) > MAX_NB_BYTES: bad.append(f'{nb.relative_to(ROOT)}: {len(text.encode())/1e3:.0f} kB > {MAX_NB_BYTES/1e3:.0f} kB (clear heavy outputs)')
        if 'application/vnd.jupyter.widget-state+json' in text: bad.append(f'{nb.relative_to(ROOT)}: holds saved widget state (clear outputs)')
    if bad: sys.exit('\n'.join(bad))
    print('ok: notebooks clean and light')

def _readme_text():
    r = subprocess.run(['jupyter', 'nbconvert', '--to', 'markdown', '--stdout', '--log-level=ERROR', str(ROOT / 'nbs' / 'index.ipynb')],
                       capture_output=True, text=True, check=True)
    return r.stdout

def check_readme():
    if (ROOT / 'README.md').read_text(encoding='utf-8') != _readme_text():
        sys.exit('README.md is out of date with nbs/index.ipynb: run `python tools/check_tree.py fix`')
    print('ok: README.md current')

def fix():
    subprocess.run(['nbdev_export'], cwd=ROOT, check=True)
    subprocess.run(['nbdev_clean'], cwd=ROOT, check=True)
    (ROOT / 'README.md').write_text(_readme_text(), encoding='utf-8')
    print('exported, cleaned, README rebuilt')

if __name__ == '__main__':
    {'export': check_export, 'clean': check_clean, 'readme': check_readme, 'fix': fix}[sys.argv[1]]()
