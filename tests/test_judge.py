import pytest, torch
import torch.nn.functional as F
from brain2image.core import DataFormatError
from brain2image.conditioning import StimulusBank
from brain2image.image_classifier import images_to_tensor
from brain2image.judge import Judge, train_judge, JudgeFeatures, JudgeLogits, check_images

pytestmark = pytest.mark.usefixtures('one_thread')

@pytest.fixture(scope='module')
def prototypes(tiny):
    return StimulusBank(tiny, 32).class_examples(1)

# --- the judge ----------------------------------------------------------------------------------------------
def test_judge_reads_stimuli(judge, tiny, stim, prototypes):
    assert judge.n_classes == 4 and judge.size == 32 and len(judge.heldout_images) == 4
    assert judge.heldout is not None and judge.heldout.n == 4
    assert (judge.predict(stim).numpy() == tiny.image_labels).mean() >= 0.9
    assert judge.predict(prototypes).tolist() == [0, 1, 2, 3]
    big = images_to_tensor(tiny.images)                                  # 64 x 64: resized inside
    assert torch.allclose(judge.logits(big), judge.logits(F.interpolate(big, size=(32, 32), mode='bilinear', antialias=True)), atol=1e-5)
    assert judge.features(stim).shape == (16, judge.dim)
    assert torch.allclose(judge.probs(stim).sum(1), torch.ones(16))

def test_judge_save_load_round_trip(judge, stim, tmp_path):
    p = judge.save(tmp_path / 'judge.pt')
    j2 = Judge.load(p)
    torch.testing.assert_close(j2.logits(stim), judge.logits(stim), rtol=1e-5, atol=1e-5)     # rebuilt from the file, run again
    assert j2.heldout == judge.heldout and j2.class_names == judge.class_names and j2.heldout_images == judge.heldout_images
    torch.save(dict(kind='something else'), tmp_path / 'other.pt')
    with pytest.raises(DataFormatError, match='kind'): Judge.load(tmp_path / 'other.pt')

def test_train_judge_errors(tiny):
    with pytest.raises(ValueError, match='holdout_per_class=4'): train_judge(tiny, epochs=1, holdout_per_class=4)
    with pytest.raises(ValueError, match='augment'): train_judge(tiny, epochs=1, augment='rotate')

def test_bad_images_are_named(judge):
    with pytest.raises(ValueError, match=r'images: expected images \[N, 3, H, W\]'): judge.predict(torch.zeros(2, 32, 32, 3))
    with pytest.raises(ValueError, match='expected float images'): judge.predict(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))

def test_judge_as_feature_extractor(judge, stim):
    assert JudgeFeatures(judge)(stim).shape == (16, judge.dim) and JudgeLogits(judge)(stim).shape == (16, 4)
    assert JudgeLogits(judge).num_features == 4 and JudgeFeatures(judge).num_features == judge.dim
    with pytest.raises(ValueError, match="output='probs'"): JudgeFeatures(judge, 'probs')

def test_check_images_names_the_argument():
    with pytest.raises(ValueError, match=r'fake: expected images \[N, 3, H, W\]'): check_images(torch.zeros(2, 8, 8), 'fake')
    with pytest.raises(ValueError, match=r'at least 3 image\(s\)'): check_images(torch.zeros(2, 3, 8, 8), min_n=3)
