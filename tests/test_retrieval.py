import numpy as np, pytest, torch
from dataclasses import replace
from brain2image.core import seeded
from brain2image.encoders import make_encoder
from brain2image.retrieval import (kway_retrieval, retrieval_examples, linear_concept_data, split_by_concept, align_encoder,
                                   evaluate_zero_shot, leave_one_subject_out, embed, ALIGN_RECIPE)

pytestmark = pytest.mark.usefixtures('one_thread')
RECIPE = replace(ALIGN_RECIPE, epochs=20, lr=1e-2)

def _concepts(C=20, D=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng, rng.standard_normal((C, D)), np.repeat(np.arange(C), 5)

def test_perfect_embeddings_top1_is_one_and_big_k_skipped():
    rng, c, y = _concepts()
    df = kway_retrieval(c[y], c, y, ks=(2, 4, 10, 50, 200), n_perm=200)
    assert df.accuracy.tolist() == [1.0] * len(df)
    assert df.attrs['skipped_ks'] == [50, 200] and list(zip(df.k, df.top)) == [(2, 1), (4, 1), (10, 1), (10, 5)]
    assert (df.p < 0.01).all()

def test_random_and_shuffled_at_chance():
    rng, c, y = _concepts()
    yy = np.repeat(np.arange(20), 20)
    rand = kway_retrieval(rng.standard_normal((400, 16)), c, yy, ks=(2, 4, 10, 20), n_perm=300)
    assert (abs(rand.accuracy - rand.chance) < 0.06).all() and (rand.p > 0.05).all(), rand
    shuf = kway_retrieval(c[y], c, rng.permutation(y), ks=(2, 4, 10, 20), n_perm=300)
    assert (abs(shuf.accuracy - shuf.chance) < 0.12).all() and (shuf.p > 0.01).all(), shuf

def test_exact_mean_matches_draws_and_full_ranking():
    rng, c, y = _concepts()
    noisy = c[y] + 1.5 * rng.standard_normal((len(y), 16))
    ex = kway_retrieval(noisy, c, y, ks=(2, 4, 10), n_perm=0)
    dr = kway_retrieval(noisy, c, y, ks=(2, 4, 10), n_perm=0, n_draws=400)
    np.testing.assert_allclose(ex.accuracy, dr.accuracy, atol=0.02)
    u = noisy / np.linalg.norm(noisy, axis=1, keepdims=True); cu = c / np.linalg.norm(c, axis=1, keepdims=True)
    full = kway_retrieval(noisy, c, y, ks=(20,), tops=(1,), n_perm=0)
    assert full.accuracy[0] == pytest.approx(((u @ cu.T).argmax(1) == y).mean())
    avg = kway_retrieval(noisy, c, y, ks=(2,), n_perm=0, average_repetitions='concept')
    assert avg.n[0] == 20 and avg.averaged[0] == 'by concept'
    assert retrieval_examples(c[y], c, [3, 50]).tolist()[0][0] == y[3]

@pytest.fixture(scope='module')
def fixture():
    ds, f = linear_concept_data(n_concepts=60, noise=1.0, seed=0); split_by_concept(ds, seed=0)
    return ds, f

def test_aligned_encoder_above_chance_on_unseen_concepts(fixture):
    ds, f = fixture
    m = align_encoder(ds, f, RECIPE, device='cpu')
    assert m.result.monitor == 'val_2way' and m.result.best_score == max(h['val_2way'] for h in m.result.history)
    z = embed(m, ds); np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1, atol=1e-4)
    zs = evaluate_zero_shot(m, ds, f, ks=(2, 4, 10), n_perm=500)
    assert (zs.ci_low > zs.chance).all() and (zs.p < 0.01).all(), zs
    assert zs.query('k == 2').accuracy.iloc[0] > 0.75, zs

def test_split_sharing_concepts_refused(fixture):
    ds, f = fixture
    bad = ds.subset(np.arange(len(ds)))
    bad.add_split('by_concept', dict(train=np.arange(0, len(ds), 2), val=np.arange(1, len(ds), 4), test=np.arange(3, len(ds), 4)))
    with pytest.raises(ValueError, match='share'): align_encoder(bad, f, RECIPE, device='cpu')

def test_loso_fresh_model_per_fold():
    ds, f = linear_concept_data(n_concepts=40, n_subjects=3, repetitions=2, noise=1.0, seed=2); split_by_concept(ds, seed=0)
    lo = leave_one_subject_out(ds, f, replace(RECIPE, epochs=4), record_init=True, device='cpu', ks=(2, 4), n_perm=100)
    assert sorted(lo['folds']) == [0, 1, 2] and len(lo['mean']) == 2
    te = ds.splits['by_concept']['test']
    for s, df in lo['folds'].items():
        assert df.n.iloc[0] == (ds.subject[te] == s).sum()
        assert (ds.subject[ds.splits[f'loso_concept_{s}']['train']] != s).all()
    init = lo['init_states']
    with seeded(RECIPE.seed): fresh = make_encoder('conv', ds.n_chans, ds.n_times, ds.n_classes, 64)
    for k, v in fresh.state_dict().items(): assert torch.equal(init[1]['encoder.' + k][0], v), k
    for s in (1, 2):
        for k, (v, _) in init[s].items(): assert torch.equal(v, init[0][k][0]), k
        assert not {p for _, p in init[s].values()} & {p for _, p in init[s - 1].values()}
    trained0 = lo['models'][0].encoder.state_dict()
    assert any(not torch.equal(init[1]['encoder.' + k][0], v) for k, v in trained0.items() if v.is_floating_point())
