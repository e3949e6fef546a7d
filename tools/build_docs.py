"""Build the docs site `_site/` from the executed notebooks (not part of the package; no Quarto needed).

  python tools/build_docs.py                      # every notebook in nbs/; runs the ones not yet executed
  python tools/build_docs.py --only 00_core,00a_stats
  python tools/build_docs.py --no-exec            # use _build/executed/ only; fail if a notebook is missing there

One page per notebook, `_site/<name>.html`, made by nbconvert's HTML exporter from `_build/executed/<name>.ipynb`
(written by `tools/run_notebooks.py`, which this runs first for any notebook missing there or older than its source),
figures embedded in the page. nbdev's cell directives are honoured as the nbdev docs would: cells marked `#| hide`
(or `#| include: false`) are left out, `#| echo: false` shows only the outputs, `#| output: false` only the code, and
every `#|` line is stripped from the code shown; cells left empty (a lone `#| default_exp`) are dropped.
`_site/index.html` is nbs/index.ipynb (the README), its module map (notebook -> module -> what) linking each page,
followed by a list of every page. Exits 1 if any page is missing.
"""
import argparse, copy, html, re, subprocess, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_notebooks import EXECUTED, ROOT, notebooks   # noqa: E402

SITE = ROOT / '_site'
NAV = ('<nav style="max-width:1100px;margin:0 auto;padding:.6em 1em;font-family:sans-serif;border-bottom:1px solid #ddd">'
       '<a href="index.html">brain2image</a> &middot; {title}</nav>')


def _directives(src: str):
    "nbdev's leading `#| key args` lines of a code cell -> ({key: args}, source without them)"
    lines, direc = src.splitlines(keepends=True), {}
    i = 0
    while i < len(lines) and (lines[i].strip() == '' or re.match(r'\s*#\|', lines[i])):
        m = re.match(r'\s*#\|\s*([\w-]+:?)\s*(.*)', lines[i])
        if m: direc[m.group(1).rstrip(':')] = m.group(2).strip()
        i += 1
    return direc, ''.join(lines[i:])


def prepare(nb, pages: set):
    "Apply nbdev's directives for reading (see module doc) and link `NAME` mentions of other pages; in place"
    cells = []
    for c in nb.cells:
        if c.cell_type == 'code':
            direc, src = _directives(c.source)
            if 'hide' in direc or direc.get('include', '').lower() == 'false': continue
            if direc.get('output', '').lower() == 'false': c.outputs = []
            c.source = src.rstrip()
            if direc.get('echo', '').lower() == 'false': c.metadata.setdefault('transient', {})['remove_source'] = True
            if not c.source and not c.outputs: continue
            c.execution_count = None
        elif c.cell_type == 'markdown':
            # `05a_feature_geometry` -> a link to its page (not inside fenced code, not already a link)
            c.source = re.sub(r'(?<!\[)`(\d\d[a-z]?_\w+|index)`(?!\])',
                              lambda m: f'[`{m.group(1)}`]({m.group(1)}.html)' if m.group(1) in pages else m.group(0), c.source)
        elif c.cell_type == 'raw': continue
        cells.append(c)
    nb.cells = cells
    return nb


def title_of(nb, default):
    for c in nb.cells:
        if c.cell_type == 'markdown':
            m = re.search(r'^#\s+(.+)$', c.source, re.M)
            if m: return m.group(1).strip()
    return default


def exporter():
    from nbconvert import HTMLExporter
    e = HTMLExporter(template_name='lab')
    e.exclude_input_prompt = e.exclude_output_prompt = True   # no `In [ ]:` gutters: the cells were run by a script
    e.embed_images = True
    return e


def build(names, pages):
    import nbformat
    SITE.mkdir(exist_ok=True)
    e, titles = exporter(), {}
    for name in names:
        nb = nbformat.read(EXECUTED / f'{name}.ipynb', as_version=4)
        nb = prepare(copy.deepcopy(nb), pages)
        titles[name] = title_of(nb, name)
        nb.metadata['title'] = f'brain2image - {titles[name]}' if name != 'index' else 'brain2image'
        body, _ = e.from_notebook_node(nb)
        nav = NAV.format(title=html.escape(titles[name] if name != 'index' else 'docs built from the executed notebooks'))
        if name == 'index':
            listing = ''.join(f'<li><a href="{n}.html"><code>{n}</code></a> - {html.escape(titles.get(n, n))}</li>'
                              for n in sorted(pages) if n != 'index')
            body = body.replace('</main>', '<section style="max-width:1100px;margin:2em auto;padding:0 1em;font-family:sans-serif">'
                                f'<h2>All pages</h2><ul>{listing}</ul></section></main>', 1)
        body = re.sub(r'(<body[^>]*>)', lambda m: m.group(1) + nav, body, count=1)
        (SITE / f'{name}.html').write_text(body, encoding='utf-8')
        print(f'  {name}.html  {len(body) / 1e3:8.0f} kB  {titles[name]}')
    return titles


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--only', default='', help='comma-separated notebook names (index is always built); default: all')
    p.add_argument('--no-exec', action='store_true', help='never run notebooks: fail if one is missing from _build/executed/')
    p.add_argument('--workers', default=None, help='passed to run_notebooks.py when notebooks need running')
    a = p.parse_args(argv)
    only = [n.strip().removesuffix('.ipynb') for n in a.only.split(',') if n.strip()]
    if only and 'index' not in only: only.append('index')
    names = [f.stem for f in notebooks(only or None)]
    srcs = {f.stem: f for f in notebooks(only or None)}
    stale = [n for n in names if not (EXECUTED / f'{n}.ipynb').exists()
             or (EXECUTED / f'{n}.ipynb').stat().st_mtime < srcs[n].stat().st_mtime]
    if stale and a.no_exec:
        sys.exit(f'--no-exec: not executed (or older than nbs/): {", ".join(stale)}; run python tools/run_notebooks.py')
    if stale:
        print(f'executing first: {", ".join(stale)}', flush=True)
        cmd = [sys.executable, str(ROOT / 'tools' / 'run_notebooks.py'), '--only', ','.join(stale)]
        if a.workers: cmd += ['--workers', str(a.workers)]
        if subprocess.run(cmd).returncode: sys.exit('notebooks failed to run; no site built')

    print(f'building {SITE.relative_to(ROOT)}/ from {EXECUTED.relative_to(ROOT)}/ ({len(names)} pages)', flush=True)
    build(names, set(names))
    missing = [n for n in names if not (SITE / f'{n}.html').exists()]
    index = (SITE / 'index.html').read_text(encoding='utf-8') if (SITE / 'index.html').exists() else ''
    unlinked = [n for n in names if n != 'index' and f'href="{n}.html"' not in index]
    if missing or unlinked:
        sys.exit(f'docs site incomplete: missing pages {missing}, pages not linked from index.html {unlinked}')
    print(f'ok: {len(names)} pages in {SITE.relative_to(ROOT)}/ (open {SITE.relative_to(ROOT)}/index.html)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
