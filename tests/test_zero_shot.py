"The zero-shot protocol as a run: the things-like preset (shrunk to the tiny concept set) end to end, its controls, report and config checks."
import json
import numpy as np
import pytest
from brain2image.config import get_preset, validate_config
from brain2image.pipeline import run

pytestmark = pytest.mark.usefixtures('one_thread')

def _tiny_cfg():
    cfg = get_preset('things-like')
    cfg['dataset'] = dict(kind='concepts', size='tiny', seed=0)
    cfg['zero_shot'] = dict(epochs=12, lr=1e-2, ks=[2, 4, 10, 50])
    return cfg

def test_things_like_run_end_to_end(tmp_path):
    m = run(_tiny_cfg(), tmp_path / 'r', progress=False, cache=False)
    z = m['zero_shot']
    al = {r['k']: r for r in z['table'] if r['top'] == 1}
    assert set(al) == {2, 4, 10}                                 # 10 test concepts: 50-way is skipped, 10-way is the full ranking
    assert al[2]['accuracy'] > 0.6 and al[2]['p'] < 0.05 and al[2]['n_concepts'] == 10
    for c in ('shuffled', 'identity'):                           # the controls sit at chance: their intervals reach it
        for r in z['controls'][c]['table']:
            if r['top'] == 1: assert r['ci_low'] <= r['chance'] <= r['ci_high'] + 0.05, (c, r)
    assert z['ok'] and 'among 10 unseen concepts' in z['sentence']
    html = (tmp_path / 'r' / 'report.html').read_text()
    assert 'Zero-shot retrieval of unseen concepts' in html and 'control: identity' in html and 'Decoding: the encoder' not in html
    for f in ('retrieval.png', 'retrieval_examples.png'): assert (tmp_path / 'r' / 'figures' / f).stat().st_size > 1000
    assert json.loads((tmp_path / 'r' / 'metrics.json').read_text())['zero_shot']['features'].startswith('trained')
    ex = z['examples']                                           # the top-5 of each example trial are test concepts only
    test_concepts = set(np.asarray(z['table'] and ex['top']).ravel().tolist())
    assert len(ex['trials']) == len(ex['top']) and all(len(t) == 5 for t in ex['top']) and len(test_concepts) <= 10

def test_zero_shot_config_is_checked():
    cfg = _tiny_cfg(); cfg['zero_shot']['epoch'] = 3
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['epoch'\]"): validate_config(cfg)
    cfg = _tiny_cfg(); cfg['zero_shot']['controls'] = ['random']
    with pytest.raises(ValueError, match="unknown \\['random'\\]"): validate_config(cfg)
    cfg = get_preset('quickstart'); cfg['split'] = 'zero_shot'      # a zero-shot split outside the protocol is refused
    with pytest.raises(ValueError, match="expected 'by_image'"): validate_config(cfg)
