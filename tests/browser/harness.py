"""Real JupyterLab in headless Chromium, for widget tests (recipe: shared/docs/BROWSER-TEST.md).

`jupyter_lab(notebooks)` starts a private JupyterLab server on 127.0.0.1 (free port, random token, its own settings,
workspaces, config and runtime dirs, root_dir = a temp dir holding *copies* of the notebooks so autosave never touches
the repository) and stops it with POST /api/shutdown, killing only the process group it started if that fails.
`launch_chromium(p)` opens Debian's /usr/bin/chromium through Playwright; the `LabPage` helpers open a notebook, wait
for the kernel, Run All, read an `<img>`'s pixels through a canvas and drag an ipywidgets slider.
"""
from __future__ import annotations
import contextlib, json, os, secrets, shutil, signal, socket, subprocess, sys, tempfile, time
import urllib.error, urllib.request
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = os.environ.get('BRAIN2IMAGE_CHROMIUM', '/usr/bin/chromium')
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage']


def missing_requirements() -> list[str]:
    "What the browser tests need and this machine lacks (empty when all is there)."
    out = []
    if not os.access(CHROMIUM, os.X_OK): out.append(f'{CHROMIUM} (apt-get install chromium; tools/browser_setup.sh)')
    try: import playwright.sync_api  # noqa: F401
    except ImportError: out.append("python package playwright (pip install 'playwright>=1.40'; tools/browser_setup.sh)")
    try: import jupyterlab  # noqa: F401
    except ImportError: out.append('python package jupyterlab')
    return out


def free_port() -> int:
    "A TCP port on 127.0.0.1 that nothing listens on right now."
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@dataclass
class LabServer:
    url: str          # http://127.0.0.1:PORT
    token: str
    root_dir: Path    # the temp dir the server serves (copies of the notebooks)
    log_path: Path    # the server's stdout+stderr
    proc: subprocess.Popen

    def api(self, path: str, method: str = 'GET', timeout: float = 5.0):
        "Call the server's REST API; returns the decoded JSON (or None for an empty body)."
        req = urllib.request.Request(f'{self.url}{path}', method=method, headers={'Authorization': f'token {self.token}'},
                                     data=b'' if method in ('POST', 'DELETE') else None)
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
        return json.loads(body) if body else None

    def notebook_url(self, name: str, workspace: str | None = None) -> str:
        "URL opening `name`; with `workspace`, in that (new, empty) JupyterLab workspace instead of restoring the default one."
        ws = f'/lab/workspaces/{workspace}/tree/' if workspace else '/lab/tree/'
        return f'{self.url}{ws}{name}?token={self.token}'

    def log_tail(self, n: int = 4000) -> str:
        try: return self.log_path.read_text(errors='replace')[-n:]
        except OSError: return ''

    def shutdown_kernels(self):
        "Stop every kernel (so one test's kernel does not keep working while the next test runs)."
        for k in self.api('/api/kernels') or []:
            with contextlib.suppress(Exception): self.api(f"/api/kernels/{k['id']}", method='DELETE', timeout=10)


def _write_lab_settings(settings_dir: Path):
    "No news / update check: its toast covers the notebook."
    p = settings_dir / '@jupyterlab' / 'apputils-extension' / 'notification.jupyterlab-settings'
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps({'fetchNews': 'false', 'checkForUpdates': False}))


@contextlib.contextmanager
def jupyter_lab(notebooks: dict[str, str | os.PathLike | dict],  # served name -> source path, or a notebook dict
                env: dict | None = None,  # extra environment for the server (its kernels inherit it)
                log_dir: str | os.PathLike | None = None,  # where the server log goes (default: the temp dir)
                start_timeout: float = 90.0,  # seconds to wait for /api/status
               ):
    "Start a private JupyterLab serving copies of `notebooks`; yield a `LabServer`; always stop it."
    tmp = Path(tempfile.mkdtemp(prefix='b2i-lab-'))
    root, home = tmp / 'root', tmp / 'home'
    root.mkdir(); home.mkdir()
    for name, src in notebooks.items():
        dst = root / name
        if isinstance(src, dict): dst.write_text(json.dumps(src, indent=1))
        else: shutil.copyfile(src, dst)
    settings = home / 'lab-settings'
    _write_lab_settings(settings)
    full_env = {**os.environ,
                'JUPYTERLAB_SETTINGS_DIR': str(settings), 'JUPYTERLAB_WORKSPACES_DIR': str(home / 'lab-workspaces'),
                'JUPYTER_CONFIG_DIR': str(home / 'config'), 'JUPYTER_RUNTIME_DIR': str(home / 'runtime'),
                'PYTHONUNBUFFERED': '1'}
    full_env.pop('MPLBACKEND', None)  # tools/test.sh sets Agg; kernels should show figures inline as for a user
    full_env.update({k: str(v) for k, v in (env or {}).items()})
    port, token = free_port(), secrets.token_hex(16)
    log_path = Path(log_dir or tmp) / 'jupyterlab.log'
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, '-m', 'jupyterlab', '--no-browser', '--allow-root', '--ServerApp.ip=127.0.0.1',
           f'--ServerApp.port={port}', '--ServerApp.port_retries=0', f'--IdentityProvider.token={token}',
           f'--ServerApp.root_dir={root}']
    with open(log_path, 'wb') as log:
        # own session: its kernels share the process group, so a last-resort kill reaches exactly what we started
        proc = subprocess.Popen(cmd, cwd=root, env=full_env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    server = LabServer(f'http://127.0.0.1:{port}', token, root, log_path, proc)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f'jupyter lab exited with code {proc.returncode} before answering:\n{server.log_tail()}')
            try:
                server.api('/api/status', timeout=2); break
            except (urllib.error.URLError, ConnectionError, OSError):
                if time.monotonic() > deadline:
                    raise TimeoutError(f'jupyter lab did not answer /api/status within {start_timeout:.0f} s:\n{server.log_tail()}')
                time.sleep(0.3)
        yield server
    finally:
        _stop(server)
        shutil.rmtree(tmp, ignore_errors=True)  # the copies, settings and runtime dirs (and the log unless log_dir)


def _stop(server: LabServer, grace: float = 15.0):
    "POST /api/shutdown (stops the kernels too); if the server lingers, signal only its own process group."
    proc = server.proc
    if proc.poll() is None:
        with contextlib.suppress(Exception): server.api('/api/shutdown', method='POST')
        with contextlib.suppress(subprocess.TimeoutExpired): proc.wait(grace)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try: os.killpg(proc.pid, sig)  # pgid == proc.pid (start_new_session): the server and the kernels it spawned
        except (ProcessLookupError, PermissionError): break
        with contextlib.suppress(subprocess.TimeoutExpired): proc.wait(5)
    with contextlib.suppress(subprocess.TimeoutExpired): proc.wait(5)


def launch_chromium(p):
    "Headless Debian chromium through Playwright (`p` = a started `sync_playwright()`)."
    return p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


# ---- page helpers --------------------------------------------------------------------------------------------------

# Draw the <img> (the element with the class, or the first <img> inside it) onto a canvas: a fingerprint of the whole
# image (FNV-1a over RGBA) and a 64x64 RGB thumbnail sampled nearest-neighbour (real pixels, no blur) to measure how
# much changed. The blob: URL ipywidgets uses is same-origin, so the canvas is not tainted. null until decoded.
_PIXELS_JS = """(sel) => {
  const el = document.querySelector(sel);
  if (!el) return null;
  const img = el.tagName === 'IMG' ? el : el.querySelector('img');
  if (!img || !img.complete || !img.naturalWidth) return null;
  const w = img.naturalWidth, h = img.naturalHeight;
  const c = document.createElement('canvas'); c.width = w; c.height = h;
  const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
  const d = ctx.getImageData(0, 0, w, h).data;
  let hash = 0x811c9dc5;
  for (let i = 0; i < d.length; i++) { hash ^= d[i]; hash = Math.imul(hash, 16777619) >>> 0; }
  const n = 64, t = document.createElement('canvas'); t.width = n; t.height = n;
  const tctx = t.getContext('2d'); tctx.imageSmoothingEnabled = false; tctx.drawImage(img, 0, 0, n, n);
  const td = tctx.getImageData(0, 0, n, n).data, thumb = [];
  for (let i = 0; i < td.length; i += 4) thumb.push(td[i], td[i + 1], td[i + 2]);
  return {hash: hash, w: w, h: h, thumb: thumb};
}"""


def read_pixels(page, selector: str) -> dict | None:
    "Fingerprint of the image shown by `selector` (see `_PIXELS_JS`), or None if not shown yet."
    return page.evaluate(_PIXELS_JS, selector)


def pixel_diff(a: dict, b: dict) -> tuple[float, float]:
    "(mean absolute difference 0-255, fraction of pixels that differ) between two fingerprints' thumbnails."
    ta, tb = a['thumb'], b['thumb']
    mad = sum(abs(x - y) for x, y in zip(ta, tb)) / max(len(ta), 1)
    changed = sum(ta[i:i + 3] != tb[i:i + 3] for i in range(0, len(ta), 3)) / max(len(ta) // 3, 1)
    return mad, changed


def wait_settled(page, selector: str, timeout: float = 20.0, quiet: float = 1.0) -> dict:
    "Wait until the image has the same pixels for `quiet` seconds (updates in flight have landed); return them."
    deadline, last, since = time.monotonic() + timeout, None, time.monotonic()
    while time.monotonic() < deadline:
        cur = read_pixels(page, selector)
        if cur is None or last is None or cur['hash'] != last['hash']: last, since = cur, time.monotonic()
        elif time.monotonic() - since >= quiet: return cur
        time.sleep(0.2)
    raise TimeoutError(f'{selector}: pixels did not settle within {timeout:.0f} s (last: {last and last["hash"]})')


def error_outputs(page) -> list[str]:
    "Texts of the error outputs (tracebacks) currently shown in the notebook."
    return page.locator('[data-mime-type="application/vnd.jupyter.error"]').all_inner_texts()


def open_notebook(page, server: LabServer, name: str, timeout: float = 90.0):
    """Open `name` in a fresh JupyterLab workspace (so no tab of an earlier test is restored next to it) and wait
    until it is the active tab and its kernel reports `| Idle` in the status bar."""
    import uuid
    page.goto(server.notebook_url(name, workspace=f'b2i-{uuid.uuid4().hex[:8]}'), wait_until='domcontentloaded', timeout=timeout * 1000)
    page.locator('.jp-NotebookPanel:not(.lm-mod-hidden)').first.wait_for(timeout=timeout * 1000)
    page.locator('#jp-main-statusbar').get_by_text('| Idle').first.wait_for(timeout=timeout * 1000)
    time.sleep(1.0)   # let the kernel connection settle before commands are sent


def _any_cell_started(page) -> bool:
    return page.evaluate(r"() => [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-InputArea-prompt')]"
                         r".some(e => /\[(\*|\d+)\]/.test(e.textContent))")


def run_all(page, tries: int = 3, wait: float = 20.0):
    "Run menu -> Run All Cells (no default shortcut exists); clicked again if no cell starts (a kernel still connecting drops it)."
    for _ in range(tries):
        page.locator('#jp-MainMenu').get_by_role('menuitem', name='Run', exact=True).click()
        page.get_by_role('menuitem', name='Run All Cells', exact=True).click()
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if _any_cell_started(page): return
            time.sleep(0.25)
    raise TimeoutError(f'Run All Cells: no cell started after {tries} tries')


def wait_for_image(page, selector: str, timeout: float) -> dict:
    "Wait until `selector`'s image is decoded, failing early with the traceback if a cell raised."
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        errs = error_outputs(page)
        if errs: raise AssertionError('a notebook cell raised:\n' + '\n---\n'.join(e[-3000:] for e in errs))
        px = read_pixels(page, selector)
        if px is not None: return px
        time.sleep(0.5)
    raise TimeoutError(f'{selector}: no image within {timeout:.0f} s')


def wait_run_finished(page, timeout: float):
    "Wait until no cell is queued or running (`[*]` prompt) and the kernel is `| Idle`, failing early on a traceback."
    deadline = time.monotonic() + timeout
    idle = page.locator('#jp-main-statusbar').get_by_text('| Idle')
    while time.monotonic() < deadline:
        errs = error_outputs(page)
        if errs: raise AssertionError('a notebook cell raised:\n' + '\n---\n'.join(e[-3000:] for e in errs))
        running = page.evaluate("() => [...document.querySelectorAll('.jp-InputArea-prompt')].some(e => e.textContent.includes('*'))")
        if not running and idle.count() > 0: return
        time.sleep(0.5)
    raise TimeoutError(f'the notebook was still running after {timeout:.0f} s')


def _stable_box(locator, tries: int = 20) -> dict:
    "The element's bounding box once it stops moving (outputs arriving and scrolling shift the layout)."
    last = locator.bounding_box()
    for _ in range(tries):
        time.sleep(0.1)
        cur = locator.bounding_box()
        if cur == last: return cur
        last = cur
    return last


def slider_value(page, selector: str) -> float:
    "The slider's current value, from its handle's aria-valuenow (noUiSlider)."
    return float(page.locator(f'{selector} .noUi-handle').first.get_attribute('aria-valuenow'))


def drag_slider(page, selector: str, target: float, vmin: float = 0.0, vmax: float = 1.0, tol: float = 1e-6,
                max_keys: int = 200) -> tuple[float, float]:
    "Drag the slider's handle to `target` with the mouse (down/move/up on `.noUi-base`), then fine-tune with keys; returns (value after the mouse, final value)."
    handle = page.locator(f'{selector} .noUi-handle').first
    base = page.locator(f'{selector} .noUi-base').first
    handle.scroll_into_view_if_needed()
    hb, bb = _stable_box(handle), _stable_box(base)
    frac = (target - vmin) / (vmax - vmin)
    x0, y0 = hb['x'] + hb['width'] / 2, hb['y'] + hb['height'] / 2
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(bb['x'] + frac * bb['width'], y0, steps=12)
    page.mouse.up()
    dragged = slider_value(page, selector)
    handle.focus()
    if abs(target - vmax) <= tol: handle.press('End')
    elif abs(target - vmin) <= tol: handle.press('Home')
    for _ in range(max_keys):  # arrow keys move one step; stop at the target or when a key no longer moves it
        v = slider_value(page, selector)
        if abs(v - target) <= tol + 1e-9: break
        handle.press('ArrowRight' if v < target else 'ArrowLeft')
        if slider_value(page, selector) == v: break
    return dragged, slider_value(page, selector)


def screenshot(page, path: Path, focus: str | None = None):
    "Screenshot of the page, scrolled to `focus` if given and shown; never raises (it is evidence, not a check)."
    with contextlib.suppress(Exception):
        if focus and page.locator(focus).count(): page.locator(focus).first.scroll_into_view_if_needed(timeout=2000)
    with contextlib.suppress(Exception):
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True)
        return path
