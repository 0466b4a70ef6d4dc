"""MLP model, the batched lane trainer, and loss-landscape slices."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sgdtui.mlp.datasets import make_dataset
from sgdtui.mlp.landscape import LandscapeError, loss_slice
from sgdtui.mlp.model import (
    DeviceError,
    LaneSetup,
    MLPConfig,
    MLPConfigError,
    MLPTrainer,
    TrainerError,
    build_mlp,
    resolve_device,
)


@pytest.fixture(scope="module")
def moons():
    return make_dataset("moons", n=600, noise=0.1, seed=0)


def adam(lr=0.01):
    return lambda params: torch.optim.Adam(params, lr=lr)


def sgd(lr=0.1, momentum=0.0, weight_decay=0.0):
    return lambda params: torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def run(trainer, steps: int) -> None:
    for _ in range(steps):
        trainer.step()


def val_loss_and_acc(trainer) -> tuple[list[float], list[float]]:
    """Every lane's validation loss and accuracy (NaN for regression), as the race stages them."""
    table = trainer.device_eval()
    return table[:, 0].tolist(), table[:, 1].tolist()


def mixed_lanes():
    """Different optimizers, batch sizes (two share 32), seeds and weight decays."""
    return [
        LaneSetup("adam", adam(), batch=32, seed=0),
        LaneSetup("sgd", sgd(0.1, 0.9, weight_decay=5e-4), batch=32, seed=1),
        LaneSetup("sgd-b16", sgd(0.05, weight_decay=1e-3), batch=16, seed=2),
        LaneSetup("adam-b32", adam(0.003), batch=32, seed=3),
    ]


def plain_loop(dataset, config, setup, steps, init_seed=0):
    """The reference: one model, one optimizer, the lane's own generator."""
    model = build_mlp(config, init_seed)
    opt = setup.make_optimizer(list(model.parameters()))
    generator = torch.Generator().manual_seed(setup.seed)
    loss_fn = F.cross_entropy if dataset.task == "classification" else F.mse_loss
    for _ in range(steps):
        index = torch.randint(0, dataset.n_train, (setup.batch,), generator=generator)
        loss = loss_fn(model(dataset.x_train[index]), dataset.y_train[index])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model


# ---- model ----------------------------------------------------------------------------------


def test_build_mlp_same_seed_same_weights_and_no_global_rng_use():
    config = MLPConfig(hidden=(16, 8), activation="tanh", in_dim=2, out_dim=3)
    torch.manual_seed(0)
    expected_next = torch.rand(2)
    torch.manual_seed(0)
    a, b, c = build_mlp(config, 5), build_mlp(config, 5), build_mlp(config, 6)
    assert torch.equal(torch.rand(2), expected_next)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert not torch.equal(a[0].weight, c[0].weight)
    assert a(torch.zeros(4, 2)).shape == (4, 3)


@pytest.mark.parametrize("norm,norm_cls", [("batchnorm", torch.nn.BatchNorm1d), ("layernorm", torch.nn.LayerNorm)])
def test_normalized_layers_use_bias_free_linears(norm, norm_cls):
    model = build_mlp(MLPConfig(hidden=(8, 8), norm=norm), 0)
    kinds = [type(m) for m in model]
    assert kinds == [torch.nn.Linear, norm_cls, torch.nn.ReLU] * 2 + [torch.nn.Linear]
    assert model[0].bias is None and model[3].bias is None and model[6].bias is not None


def test_default_init_matches_pytorch_bound():
    model = build_mlp(MLPConfig(hidden=(64,), in_dim=16, out_dim=2), 0)
    bound = 1 / math.sqrt(16)
    assert model[0].weight.abs().max() <= bound
    assert model[0].weight.abs().max() > 0.9 * bound


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"hidden": (32, 0)}, "hidden"),
        ({"activation": "swish"}, "activation"),
        ({"norm": "groupnorm"}, "norm"),
        ({"in_dim": 0}, "in_dim"),
    ],
)
def test_bad_config_raises(kwargs, match):
    with pytest.raises(MLPConfigError, match=match):
        MLPConfig(**kwargs)


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(DeviceError, match="tpu"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA is not available"):
            resolve_device("cuda")


# ---- trainer: exactness ---------------------------------------------------------------------


def test_trainer_is_bit_identical_across_two_runs(moons):
    config = MLPConfig.for_dataset(moons, hidden=(16, 16), norm="batchnorm")
    runs = []
    for _ in range(2):
        trainer = MLPTrainer(moons, config, mixed_lanes(), init_seed=3)
        run(trainer, 15)
        runs.append(([trainer.flat_weights(i) for i in range(4)], trainer.metrics()))
    for wa, wb in zip(runs[0][0], runs[1][0]):
        assert torch.equal(wa, wb)
    assert runs[0][1] == runs[1][1]


@pytest.mark.parametrize("norm", ["none", "batchnorm", "layernorm"])
@pytest.mark.parametrize("batching", ["stacked", "vmap"])
def test_batched_trainer_equals_separate_plain_loops(moons, norm, batching):
    config = MLPConfig.for_dataset(moons, hidden=(16, 16), norm=norm, activation="gelu")
    lanes = mixed_lanes()
    trainer = MLPTrainer(moons, config, lanes, batching=batching)
    run(trainer, 20)
    for i, setup in enumerate(lanes):
        reference = plain_loop(moons, config, setup, 20)
        for got, want in zip(trainer.module(i).state_dict().values(), reference.state_dict().values()):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=2e-6)


def test_all_lanes_start_from_the_same_weights(moons):
    trainer = MLPTrainer(moons, MLPConfig.for_dataset(moons), mixed_lanes(), init_seed=9)
    first = trainer.flat_weights(0)
    assert all(torch.equal(first, trainer.flat_weights(i)) for i in range(1, 4))
    assert torch.equal(first, torch.cat([p.reshape(-1) for p in build_mlp(trainer.config, 9).parameters()]))


def test_removing_or_adding_a_lane_leaves_the_others_identical(moons):
    config = MLPConfig.for_dataset(moons, hidden=(16,), norm="batchnorm")
    untouched = MLPTrainer(moons, config, mixed_lanes())
    run(untouched, 20)
    edited = MLPTrainer(moons, config, mixed_lanes())
    run(edited, 10)
    assert edited.remove_lane(1).name == "sgd"
    edited.add_lane(LaneSetup("late", sgd(0.2), batch=32, seed=1))
    run(edited, 10)
    assert [s.name for s in edited.lanes] == ["adam", "sgd-b16", "adam-b32", "late"]
    for before, after in [(0, 0), (2, 1), (3, 2)]:
        assert torch.equal(untouched.flat_weights(before), edited.flat_weights(after))
    losses = untouched.last_loss_tensors()
    assert edited.last_loss_tensors()[:3] == [losses[0], losses[2], losses[3]]


def test_set_batch_regroups_lanes_and_matches_a_plain_loop_run_at_that_batch(moons):
    config = MLPConfig.for_dataset(moons, hidden=(8,))
    trainer = MLPTrainer(moons, config, [LaneSetup("a", sgd(), batch=16, seed=4), LaneSetup("b", sgd(), batch=16)])
    trainer.set_batch(0, 48)
    run(trainer, 10)
    assert trainer.lanes[0].batch == 48
    reference = plain_loop(moons, config, LaneSetup("a", sgd(), batch=48, seed=4), 10)
    torch.testing.assert_close(trainer.flat_weights(0), torch.cat([p.reshape(-1) for p in reference.parameters()]))
    with pytest.raises(TrainerError, match="batch"):
        trainer.set_batch(0, 0)
    with pytest.raises(TrainerError, match="batch"):
        trainer.set_batch(1, moons.n_train + 1)


def test_adam_reaches_97_percent_on_moons(moons):
    trainer = MLPTrainer(moons, MLPConfig.for_dataset(moons), [LaneSetup("adam", adam(0.01), batch=64)])
    run(trainer, 300)
    assert val_loss_and_acc(trainer)[1][0] >= 0.97


def test_sine_regression_fits(moons):
    sine = make_dataset("sine", n=500, noise=0.05)
    trainer = MLPTrainer(sine, MLPConfig.for_dataset(sine, activation="tanh"), [LaneSetup("adam", adam(0.01), batch=64)])
    run(trainer, 300)
    val_loss, val_acc = val_loss_and_acc(trainer)
    assert val_loss[0] < 0.02 and math.isnan(val_acc[0])
    curve = trainer.predict_grid(0, (-1.7, 1.7), (0, 0), 9)
    assert curve.shape == (9,)
    assert curve[4] == pytest.approx(0.0, abs=0.15)  # x = 0 -> sin(0)
    # Standardized +-0.85 is raw x = +-0.85 * pi / sqrt(3) ~ +-pi/2: the extremes of sin.
    assert curve[2] < -0.8 and curve[6] > 0.8


# ---- trainer: metrics, predictions, errors ------------------------------------------------------


def test_metrics_are_sane_and_computed_on_demand(moons):
    config = MLPConfig.for_dataset(moons, hidden=(16, 16), norm="batchnorm")
    lanes = [
        LaneSetup("small-batch", sgd(0.1, weight_decay=1e-3), batch=8, seed=0),
        LaneSetup("big-batch", sgd(0.1, weight_decay=1e-3), batch=256, seed=0),
    ]
    trainer = MLPTrainer(moons, config, lanes)
    run(trainer, 30)
    metrics = trainer.metrics()
    assert metrics["step"] == 30 and metrics["names"] == ["small-batch", "big-batch"]
    val_loss, val_acc = val_loss_and_acc(trainer)
    assert all(0.0 <= acc <= 1.0 for acc in val_acc) and all(0.0 < loss < 1.0 for loss in val_loss)
    eval_table = trainer.device_eval()
    for i in range(2):
        expected_val = trainer.batched_loss(i, trainer.flat_weights(i)[None], split="val")[0]
        assert val_loss[i] == pytest.approx(float(expected_val), rel=1e-5)
        weights = trainer.flat_weights(i)
        assert metrics["weight_norm"][i] == pytest.approx(weights.norm().item(), rel=1e-5)
        assert float(eval_table[i, 2]) == pytest.approx(weights.norm().item(), rel=1e-5)
        # Two normalized layers: the Linear weights ahead of each BatchNorm.
        module = trainer.module(i)
        expected = tuple(0.1 / module[k].weight.detach().pow(2).sum().item() for k in (0, 3))
        assert metrics["effective_lr"][i] == pytest.approx(expected, rel=1e-5)
        assert float(eval_table[i, 3]) == pytest.approx(0.1 / expected[0], rel=1e-5)
    # E||g_hat - g||^2 ~ tr(Sigma)/B: the batch-8 lane must be far noisier than the batch-256 one.
    small, big = metrics["grad_noise"]
    assert small > 0 and big > 0 and small > 5 * big
    assert trainer.metrics(gradient_noise=False)["grad_noise"] == [None, None]


def test_effective_lr_is_none_without_normalization(moons):
    trainer = MLPTrainer(moons, MLPConfig.for_dataset(moons), [LaneSetup("a", sgd())])
    trainer.step()
    assert trainer.metrics()["effective_lr"] == [None]


def test_asking_for_metrics_does_not_change_training(moons):
    config = MLPConfig.for_dataset(moons, hidden=(16,), norm="batchnorm")
    quiet, chatty = MLPTrainer(moons, config, mixed_lanes()), MLPTrainer(moons, config, mixed_lanes())
    for _ in range(6):
        quiet.step()
        chatty.step()
        chatty.metrics()
        chatty.predict_grid(0, (-2, 2), (-2, 2), 4)
    for i in range(4):
        assert torch.equal(quiet.flat_weights(i), chatty.flat_weights(i))
        assert torch.equal(quiet.module(i)[1].running_var, chatty.module(i)[1].running_var)


def test_predict_grid_gives_class_probabilities_on_the_grid(moons):
    trainer = MLPTrainer(moons, MLPConfig.for_dataset(moons), [LaneSetup("adam", adam(0.01))])
    run(trainer, 200)
    grid = trainer.predict_grid(0, (-2.0, 2.0), (-2.5, 2.5), 21)
    assert grid.shape == (21, 21, 2) and isinstance(grid, np.ndarray)
    np.testing.assert_allclose(grid.sum(axis=2), 1.0, atol=1e-5)
    # Row j is y = linspace(ylim)[j], column i is x = linspace(xlim)[i]: check one point.
    x, y = -2.0 + 4.0 * 5 / 20, -2.5 + 5.0 * 13 / 20
    probs = trainer.module(0)(torch.tensor([[x, y]])).softmax(dim=1)[0].detach().numpy()
    np.testing.assert_allclose(grid[13, 5], probs, atol=1e-5)


def test_trainer_errors_are_clear(moons):
    config = MLPConfig.for_dataset(moons)
    trainer = MLPTrainer(moons, config, [LaneSetup("a", sgd())])
    with pytest.raises(TrainerError, match="lane index 3"):
        trainer.remove_lane(3)
    with pytest.raises(TrainerError, match="batch"):
        LaneSetup("x", sgd(), batch=0)
    with pytest.raises(TrainerError, match="out_dim"):
        MLPTrainer(moons, MLPConfig(out_dim=3), [])
    with pytest.raises(TrainerError, match="batching"):
        MLPTrainer(moons, config, [], batching="loop")
    with pytest.raises(TrainerError, match="batch must be an int in 2"):
        MLPTrainer(moons, MLPConfig.for_dataset(moons, norm="batchnorm"), [LaneSetup("a", sgd(), batch=1)])
    empty = MLPTrainer(moons, config, [])
    empty.step()  # nothing to do
    assert empty.metrics()["weight_norm"] == [] and empty.device_eval().shape == (0, 4)


# ---- landscape ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_with_path(moons):
    trainer = MLPTrainer(moons, MLPConfig.for_dataset(moons, hidden=(16, 16), norm="batchnorm"), [LaneSetup("sgd", sgd(0.2))])
    path = [trainer.flat_weights(0)]
    for _ in range(20):
        run(trainer, 3)
        path.append(trainer.flat_weights(0))
    return trainer, path


@pytest.mark.parametrize("directions", ["random", "pca"])
def test_slice_center_is_the_current_loss(trained_with_path, directions):
    trainer, path = trained_with_path
    alphas, betas, z, path_2d = loss_slice(trainer, 0, directions, res=9, span=0.5, trajectory=path)
    assert alphas.shape == (9,) and betas.shape == (9,) and z.shape == (9, 9)
    assert alphas[4] == 0.0 and betas[4] == 0.0
    assert z[4, 4] == pytest.approx(float(trainer.batched_loss(0, trainer.flat_weights(0)[None])[0]), rel=1e-5)
    assert np.isfinite(z).all() and z.max() > z[4, 4]
    assert path_2d.shape == (len(path), 2)
    np.testing.assert_allclose(path_2d[-1], [0.0, 0.0], atol=1e-5)  # the path ends at w0


def test_pca_plane_contains_the_path_and_span_one_reaches_its_extent(trained_with_path):
    trainer, path = trained_with_path
    _, _, _, path_2d = loss_slice(trainer, 0, "pca", res=3, trajectory=path)
    assert np.abs(path_2d).max(axis=0) == pytest.approx([1.0, 1.0], rel=1e-4)


def test_slice_grid_rows_follow_betas_and_seed_picks_the_directions(moons):
    from sgdtui.mlp.landscape import _filter_normalized_direction

    trainer = MLPTrainer(moons, MLPConfig.for_dataset(moons, hidden=(8,)), [LaneSetup("a", sgd())])
    run(trainer, 5)
    alphas, betas, z, _ = loss_slice(trainer, 0, "random", res=5, span=1.0, seed=11)
    # Rebuild the same two directions (same seed, same draw order) and evaluate one point by hand.
    generator = torch.Generator().manual_seed(11)
    w0 = trainer.flat_weights(0)
    d1 = _filter_normalized_direction(trainer, w0, generator)
    d2 = _filter_normalized_direction(trainer, w0, generator)
    by_hand = trainer.batched_loss(0, (w0 + float(alphas[1]) * d1 + float(betas[3]) * d2)[None])
    assert z[3, 1] == pytest.approx(by_hand.item(), rel=1e-5)
    assert z[3, 1] != pytest.approx(z[1, 3], rel=1e-3)
    _, _, z_other, _ = loss_slice(trainer, 0, "random", res=5, span=1.0, seed=12)
    assert not np.array_equal(z, z_other)


def test_random_directions_are_filter_normalized(trained_with_path):
    from sgdtui.mlp.landscape import _filter_normalized_direction

    trainer, _ = trained_with_path
    w0 = trainer.flat_weights(0)
    direction = trainer.unflatten(_filter_normalized_direction(trainer, w0, torch.Generator().manual_seed(0)))
    weights = trainer.unflatten(w0)
    for name, d in direction.items():
        if d.dim() == 2:
            torch.testing.assert_close(d.norm(dim=1), weights[name].norm(dim=1))
        else:
            assert not d.any()


def test_landscape_errors(trained_with_path):
    trainer, path = trained_with_path
    with pytest.raises(LandscapeError, match="pca"):
        loss_slice(trainer, 0, "pca")
    with pytest.raises(LandscapeError, match="directions"):
        loss_slice(trainer, 0, "hessian")
    with pytest.raises(LandscapeError, match="res"):
        loss_slice(trainer, 0, "random", res=1)
    with pytest.raises(LandscapeError, match="entries"):
        loss_slice(trainer, 0, "random", trajectory=[torch.zeros(3)])
