"""Training on real MNIST: accuracy, determinism, checkpoints; prediction in fixed batches."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from workbench import data, models, train


@pytest.fixture(scope="module")
def mnist(data_root):
    full = data.load("mnist", "train", root=data_root)
    test = data.load("mnist", "test", root=data_root)
    small = data.Dataset(full.images[:4000], full.labels[:4000], full.class_names)
    return small, data.Dataset(test.images[:2000], test.labels[:2000], test.class_names)


def _params(model):
    return jax.tree.leaves(nnx.state(model, nnx.Param))


def test_short_run_beats_90_percent_and_is_deterministic(mnist):
    small, test = mnist
    runs = []
    for _ in range(2):
        model = models.create("lenet5", seed=0)
        train.train(model, small, epochs=3, batch_size=32, seed=0)
        runs.append(model)
    assert train.accuracy(runs[0], test) > 0.90
    for a, b in zip(_params(runs[0]), _params(runs[1])):
        np.testing.assert_array_equal(a, b)
    other = models.create("lenet5", seed=0)
    train.train(other, small, epochs=1, batch_size=32, seed=1)
    assert not all(np.array_equal(a, b) for a, b in zip(_params(runs[0]), _params(other)))


def test_checkpoint_round_trip_gives_identical_logits(tmp_path, mnist):
    small, test = mnist
    model = models.create("deepfault_3x50_leaky", seed=0)
    train.train(model, small, epochs=1, batch_size=32, seed=0)
    path = tmp_path / "net.msgpack"
    train.save(model, path, metadata={"note": "test"})
    restored, meta = train.load(models.create("deepfault_3x50_leaky", seed=5), path)
    assert meta == {"note": "test"}
    np.testing.assert_array_equal(restored(test.images[:50]), model(test.images[:50]))
    assert [p.name for p in tmp_path.iterdir()] == ["net.msgpack"]


def test_load_rejects_corrupt_and_mismatched_checkpoints(tmp_path):
    path = tmp_path / "net.msgpack"
    train.save(models.create("lenet1", seed=0), path)
    truncated = tmp_path / "cut.msgpack"
    truncated.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="not a readable workbench checkpoint"):
        train.load(models.create("lenet1", seed=0), truncated)
    with pytest.raises(ValueError, match="do not fit this model"):
        train.load(models.create("lenet4", seed=0), path)


def test_load_or_train_caches_by_model_epochs_seed(tmp_path, data_root):
    first = train.load_or_train("deepfault_3x50_relu", epochs=1, limit=2000, cache=tmp_path,
                                root=data_root)
    assert not first.cached and first.test_accuracy > 0.6
    assert train.cache_path("deepfault_3x50_relu", "mnist", epochs=1, seed=0, limit=2000,
                            cache=tmp_path).is_file()
    again = train.load_or_train("deepfault_3x50_relu", epochs=1, limit=2000, cache=tmp_path,
                                root=data_root)
    assert again.cached and again.test_accuracy == first.test_accuracy
    with pytest.raises(ValueError, match="built for mnist"):
        train.load_or_train("lenet1", "cifar10", cache=tmp_path)


def test_a_new_training_version_or_recipe_names_another_checkpoint(tmp_path, monkeypatch):
    def path():
        return train.cache_path("lenet1", "mnist", epochs=1, seed=0, cache=tmp_path)

    before = path()
    assert before.name == f"lenet1-mnist-e1-s0-{train.training_digest('lenet1')}.msgpack"
    monkeypatch.setattr(train, "TRAINING_VERSION", train.TRAINING_VERSION + 1)
    bumped = path()
    monkeypatch.undo()
    assert bumped != before and path() == before
    assert train.training_digest("lenet1") != train.training_digest("lenet4")


def test_one_checkpoint_folder_per_user_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("WORKBENCH_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    expected = (tmp_path / "xdg" / "workbench" / "models" /
                f"deepfault_3x50_relu-mnist-e1-s0-n10-{train.training_digest('deepfault_3x50_relu')}"
                f".msgpack")
    model = models.create("deepfault_3x50_relu")
    for folder in ("a", "b/notebooks"):
        (tmp_path / folder).mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a")
    path = train.cache_path("deepfault_3x50_relu", "mnist", epochs=1, seed=0, limit=10)
    assert path == expected
    train.save(model, path, metadata={"test_accuracy": 0.5, "train_seconds": 1.0})
    monkeypatch.chdir(tmp_path / "b" / "notebooks")  # elsewhere: the same checkpoint, no data
    result = train.load_or_train("deepfault_3x50_relu", epochs=1, limit=10,
                                 root=tmp_path / "no-data-here")
    assert result.cached and result.test_accuracy == 0.5
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [expected.name]
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "mine"))
    assert train.default_cache() == tmp_path / "mine"


def test_recipes_follow_the_papers():
    assert train.recipe("deepfault_5x30_relu") == train.Recipe(10, 32, 1e-3, False)
    assert train.recipe("lenet5").batch_size == 128
    assert train.recipe("cifar_vgg").augment
    # He et al. 2016, section 4.2; 164 epochs of 50,000 // 128 = 390 steps are ~64k iterations.
    assert train.recipe("resnet20") == train.Recipe(
        164, 128, 0.1, True, optimizer="sgd", momentum=0.9, weight_decay=1e-4,
        milestones=(32_000, 48_000))
    assert 164 * (50_000 // 128) == 63_960


def test_sgd_steps_follow_the_milestones_and_the_weight_decay():
    # Plain SGD, learning rate 0.1 divided by 10 after steps 2 and 4; gradient 1, weight 2:
    # update = -rate * (gradient + weight_decay * weight).
    tx = train._optimizer("sgd", 0.1, 0.0, 0.5, (2, 4))
    params, state = jnp.full(1, 2.0), None
    state = tx.init(params)
    steps = []
    for _ in range(5):
        update, state = tx.update(jnp.ones(1), state, params)
        steps.append(float(update[0]))
    np.testing.assert_allclose(steps, [-0.2, -0.2, -0.02, -0.02, -0.002], rtol=1e-6)
    momentum = train._optimizer("sgd", 1.0, 0.9, 0.0, ())
    state = momentum.init(params)
    updates = [float(momentum.update(jnp.ones(1), state, params)[0][0])]
    state = momentum.update(jnp.ones(1), state, params)[1]
    updates.append(float(momentum.update(jnp.ones(1), state, params)[0][0]))
    np.testing.assert_allclose(updates, [-1.0, -1.9], rtol=1e-6)  # trace = g + 0.9 trace
    assert train._optimizer("sgd", 0.1, 0.9, 1e-4, (1,)) is train._optimizer(
        "sgd", 0.1, 0.9, 1e-4, (1,))  # one object per setting: no recompilation


_TINY_RESNET = (("conv", 4, 3, "SAME", "relu", "bn"), ("block", 4, 1), ("block", 8, 2),
                ("gap",), ("dense", 10))


def _tiny_resnet(seed):
    """A two-block ResNet on 8x8 inputs with random weights and batch statistics, without
    compiling its initialisers."""
    graphdef, state = nnx.split(nnx.eval_shape(
        lambda: models.Sequential(_TINY_RESNET, (8, 8, 3), rngs=nnx.Rngs(0))))
    rng = np.random.default_rng(seed)
    nnx.replace_by_pure_dict(state, jax.tree_util.tree_map_with_path(
        lambda path, leaf: jnp.asarray(rng.uniform(0.5, 1.5, leaf.shape) if path[-1].key == "var"
                                       else rng.uniform(-0.5, 0.5, leaf.shape), jnp.float32),
        nnx.to_pure_dict(state)))
    return nnx.merge(graphdef, state)


def test_training_updates_batch_statistics_and_checkpoints_keep_them(tmp_path):
    rng = np.random.default_rng(0)
    dataset = data.Dataset(rng.uniform(size=(32, 8, 8, 3)).astype(np.float32),
                           rng.integers(0, 10, 32).astype(np.int32), tuple("0123456789"))
    model = _tiny_resnet(0)
    before = jax.tree.map(np.asarray, nnx.to_pure_dict(nnx.state(model, nnx.BatchStat)))
    train.train(model, dataset, epochs=1, batch_size=16, learning_rate=0.1, optimizer="sgd",
                momentum=0.9, weight_decay=1e-4, milestones=(1,))
    after = nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))
    assert not np.allclose(after["conv1_bn"]["mean"], before["conv1_bn"]["mean"])
    assert not np.allclose(after["block2"]["bn2"]["var"], before["block2"]["bn2"]["var"])
    assert model.block1.bn1.use_running_average  # returned in evaluation mode
    path = tmp_path / "resnet.msgpack"
    train.save(model, path)
    restored, _ = train.load(_tiny_resnet(1), path)
    for a, b in zip(jax.tree.leaves(nnx.state(restored, nnx.BatchStat)),
                    jax.tree.leaves(nnx.state(model, nnx.BatchStat))):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(restored(dataset.images[:4]), model(dataset.images[:4]))
    with pytest.raises(ValueError, match="unknown optimizer .adagrad."):
        train.train(model, dataset, epochs=1, batch_size=16, optimizer="adagrad")
    with pytest.raises(ValueError, match="milestones must be a tuple of increasing"):
        train.train(model, dataset, epochs=1, batch_size=16, milestones=(5, 2))


def test_second_training_run_does_not_recompile(mnist, monkeypatch):
    # The step, re-jitted as train.py jits it, around a counter that fails on a second trace.
    small, _ = mnist
    subset = data.Dataset(small.images[:256], small.labels[:256], small.class_names)
    chex.clear_trace_counter()
    counted = jax.jit(chex.assert_max_traces(train._train_step.__wrapped__, n=1),
                      static_argnames=("graphdef", "augment"), donate_argnums=(1,))
    monkeypatch.setattr(train, "_train_step", counted)
    train.train(models.create("deepfault_3x50_relu", seed=0), subset, epochs=1, batch_size=32)
    train.train(models.create("deepfault_3x50_relu", seed=1), subset, epochs=1, batch_size=32,
                seed=3)


def test_predict_pads_the_last_batch_and_matches_the_model():
    model = models.create("lenet1", seed=0)
    images = jax.random.uniform(jax.random.key(0), (7, 28, 28, 1))
    expected = np.argmax(np.asarray(model(images)), axis=-1)
    predicted = train.predict(model, np.asarray(images), batch_size=3)
    assert predicted.dtype == np.int32
    np.testing.assert_array_equal(predicted, expected)
    np.testing.assert_array_equal(train.predict(model, images, batch_size=100), expected)


def test_bad_arguments_are_rejected_by_name():
    model = models.create("lenet1", seed=0)
    images = np.zeros((4, 28, 28, 1), np.float32)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        train.predict(model, images, batch_size=0)
    with pytest.raises(ValueError, match="images must be floating point"):
        train.predict(model, images.astype(np.uint8))
    with pytest.raises(ValueError, match="do not fit the model"):
        train.predict(model, np.zeros((4, 32, 32, 3), np.float32))
    dataset = data.Dataset(images, np.zeros(4, np.int32), tuple("0123456789"))
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        train.train(model, dataset, epochs=0, batch_size=2)
    with pytest.raises(ValueError, match="fewer than one batch"):
        train.train(model, dataset, epochs=1, batch_size=8)


def test_training_a_clone_leaves_the_original_intact(mnist):
    # nnx.clone shares the arrays; the donated training state must not delete the original's.
    small, _ = mnist
    subset = data.Dataset(small.images[:64], small.labels[:64], small.class_names)
    original = models.create("lenet1", seed=0)
    logits = np.asarray(original(subset.images[:2]))
    for seed in range(2):
        train.train(nnx.clone(original), subset, epochs=1, batch_size=32, seed=seed)
    assert not any(p.is_deleted() for p in _params(original))
    np.testing.assert_array_equal(np.asarray(original(subset.images[:2])), logits)
