"""The papers' released models on the real MNIST test set, and their download and check.

Published accuracies: DeepXplore (Pei et al., SOSP 2017), Table 1, the authors' measured
accuracy ("our acc."); DeepFault (Eniser et al., FASE 2019; arXiv 1902.05974v1), Table 2, whose
MNIST models are the LeakyReLU ones (section 5.1). Our measured values (CPU, float32) are
asserted to two images; the published ones to half a point.
"""

import shutil

import pytest

from workbench import data, keras, models, train

pytestmark = pytest.mark.real_data

# Correct test images out of 10,000, measured here.
MEASURED = {
    "lenet1": 9788, "lenet4": 9852, "lenet5": 9881,
    "deepfault_3x50_relu": 9738, "deepfault_3x50_leaky": 9696,
    "deepfault_5x30_relu": 9645, "deepfault_5x30_leaky": 9663,
    "deepfault_6x25_leaky": 9588,
    "deepfault_8x20_relu": 9510, "deepfault_8x20_leaky": 9508,
}
# Published accuracy in percent (see the module docstring for the tables).
PUBLISHED = {
    "lenet1": 98.33, "lenet4": 98.59, "lenet5": 98.96,  # DeepXplore Table 1, MNI_C1-C3
    "deepfault_5x30_leaky": 96.6,  # DeepFault Table 2, MNIST_1
    "deepfault_6x25_leaky": 95.8,  # DeepFault Table 2, MNIST_2
    "deepfault_8x20_leaky": 95.0,  # DeepFault Table 2, MNIST_3
}
# Test images on which the three released LeNets do not all agree, measured here.
LENET_DISAGREEMENTS = 248


@pytest.fixture(scope="module")
def released_root(data_root):
    if not (data_root / "released").is_dir():
        pytest.skip(f"no released/ folder under {data_root}")
    return data_root


@pytest.fixture(scope="module")
def mnist_test(released_root):
    return data.load("mnist", "test", root=released_root)


@pytest.fixture(scope="module")
def predictions(released_root, mnist_test):
    cache = {}

    def predict(name):
        if name not in cache:
            cache[name] = train.predict(models.released(name, root=released_root),
                                        mnist_test.images)
        return cache[name]

    return predict


def test_every_released_zoo_model_is_listed():
    assert set(models.released_names()) == set(MEASURED)


@pytest.mark.parametrize("name", sorted(MEASURED))
def test_released_accuracy(name, predictions, mnist_test):
    correct = int((predictions(name) == mnist_test.labels).sum())
    print(f"{name}: {correct / 100:.2f}% (published {PUBLISHED.get(name, 'n/a')})")
    assert abs(correct - MEASURED[name]) <= 2
    if name in PUBLISHED:
        assert abs(correct / 100 - PUBLISHED[name]) <= 0.5


def test_released_lenets_disagree_on_a_few_test_images(predictions):
    a, b, c = (predictions(n) for n in ("lenet1", "lenet4", "lenet5"))
    disagreements = int(((a != b) | (b != c)).sum())
    print(f"released LeNets: {disagreements} test images without a unanimous label")
    assert abs(disagreements - LENET_DISAGREEMENTS) <= 2


def test_released_models_have_the_zoo_structure(released_root):
    for name in ("lenet5", "deepfault_8x20_leaky"):
        net = models.released(name, root=released_root)
        zoo = models.create(name)
        assert net.sites == zoo.sites and net.plan == zoo.plan


def test_unpublished_and_unknown_models_are_refused(released_root):
    with pytest.raises(ValueError, match="did not publish their 6x25 ReLU model"):
        models.released("deepfault_6x25_relu", root=released_root)
    with pytest.raises(ValueError, match="'cifar_vgg' has no released weights"):
        models.released("cifar_vgg", root=released_root)
    with pytest.raises(ValueError, match="unknown model 'lenet9'"):
        models.released("lenet9", root=released_root)


def test_released_files_of_the_wrong_model_are_refused(released_root):
    base = released_root / "released"
    with pytest.raises(keras.KerasError, match="Model2.h5: holds weights for 4 layers"):
        models.from_keras(None, base / "deepxplore" / "Model2.h5", zoo="lenet1")
    with pytest.raises(keras.KerasError, match="mnist_test_model_5_30_relu.h5: holds weights"):
        models.from_keras(base / "deepfault" / "mnist_test_model_3_50_relu.json",
                          base / "deepfault" / "mnist_test_model_5_30_relu.h5")
    with pytest.raises(keras.KerasError, match="is not 'deepfault_3x50_leaky'"):
        models.from_keras(base / "deepfault" / "mnist_test_model_3_50_relu.json",
                          base / "deepfault" / "mnist_test_model_3_50_relu.h5",
                          zoo="deepfault_3x50_leaky")


# ---------------------------------------------------------------------- download and check
def _mirror(monkeypatch, folder):
    """Point the download at ``folder/<repository>/`` (file:// URLs): the real download code,
    without the network."""
    for repository in data.RELEASED_SOURCES:
        monkeypatch.setitem(data.RELEASED_SOURCES, repository,
                            (folder / repository).as_uri() + "/")


def _copy(source, target):
    """Copies a folder's files, writable (the shared data is read-only)."""
    for path in source.rglob("*"):
        if path.is_file():
            destination = target / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)


def _leftovers(folder):
    return [p for p in folder.rglob("*") if p.name.endswith(".part")]


def test_download_verifies_and_check_passes(tmp_path, monkeypatch, released_root):
    _mirror(monkeypatch, released_root / "released")
    target = data.download("released", root=tmp_path, progress=False)
    assert target == tmp_path / "released"
    for relative in data.RELEASED_FILES:
        assert (target / relative).read_bytes() == (released_root / "released" /
                                                    relative).read_bytes()
    sizes = data.check("released", root=tmp_path)
    assert {k: len(v) for k, v in sizes.items()} == {"deepxplore": 3, "deepfault": 14}
    assert sizes["deepxplore"]["Model1.h5"] == 48544
    assert not _leftovers(tmp_path)
    net = models.released("lenet1", root=tmp_path)
    assert net.sites == ("conv1", "pool1", "conv2", "pool2")


def test_offline_download_names_every_file_and_leaves_nothing(tmp_path, monkeypatch):
    _mirror(monkeypatch, tmp_path / "nowhere")
    root = tmp_path / "root"
    with pytest.raises(data.DataError) as caught:
        data.download("released", root=root, progress=False)
    message = str(caught.value)
    for relative in data.RELEASED_FILES:
        assert str(root / "released" / relative) in message
    assert "workbench data download released" in message
    assert not [p for p in root.rglob("*") if p.is_file()]


def test_a_corrupt_download_is_not_saved(tmp_path, monkeypatch, released_root):
    mirror = tmp_path / "mirror"
    _copy(released_root / "released", mirror)
    bad = mirror / "deepxplore" / "Model2.h5"
    bad.write_bytes(bad.read_bytes()[:1000])
    _mirror(monkeypatch, mirror)
    root = tmp_path / "root"
    with pytest.raises(data.DataError, match="Model2.h5: SHA-256 .* does not match"):
        data.download("released", root=root, progress=False)
    assert not (root / "released" / "deepxplore" / "Model2.h5").exists()
    assert not _leftovers(root)


def test_check_and_load_refuse_missing_or_altered_files(tmp_path, released_root):
    root = tmp_path / "root"
    _copy(released_root / "released" / "deepxplore", root / "released" / "deepxplore")
    with pytest.raises(data.DataError, match="14 files missing"):
        data.check("released", root=root)
    with pytest.raises(data.DataError, match="missing .*mnist_test_model_3_50_relu.h5.*"
                                             "workbench data download released"):
        models.released("deepfault_3x50_relu", root=root)
    model1 = root / "released" / "deepxplore" / "Model1.h5"
    model1.write_bytes(model1.read_bytes()[:-10])
    with pytest.raises(data.DataError, match="Model1.h5: SHA-256 .* is not that of the publ"):
        models.released("lenet1", root=root)
    with pytest.raises(data.DataError, match="not the published files.*Model1.h5"):
        data.check("released", root=root)


def test_cli_checks_the_released_files(released_root, monkeypatch, capsys, tmp_path):
    from workbench import cli

    monkeypatch.setenv("WORKBENCH_DATA", str(released_root))
    assert cli.main(["data", "check", "released"]) == 0
    out = capsys.readouterr().out
    assert "released deepxplore: 3 files, SHA-256 as published" in out
    assert "released deepfault: 14 files" in out
    monkeypatch.setenv("WORKBENCH_DATA", str(tmp_path))
    assert cli.main(["data", "check", "released"]) == 1
    assert "17 files missing" in capsys.readouterr().err
