"""NIR import of plain graphs (as other tools write them): NIR's own definitions, discretised with
forward-Euler steps of dt (docs/nir.md), checked against the equations written out step by step."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

nir = pytest.importorskip(
    "nir", reason="NIR import needs the optional 'nir' extra (pip install nir)"
)

from test_methods_fixtures import digits_tensors, trained_digits  # noqa: E402

from spikebridge.convert import Converter  # noqa: E402
from spikebridge.interop import NIRExportWarning, NIRImportError, export_nir, import_nir  # noqa: E402

DT = 1e-3


def f32(*shape, low=-1.0, high=1.0, seed=0):
    rng = np.random.default_rng(seed + sum(shape))
    return rng.uniform(low, high, size=shape).astype(np.float32)


def plain_graph():
    """Input [1,4,4] -> Conv2d -> IF -> SumPool2d -> Flatten -> Scale -> Linear -> LIF -> Affine ->
    CubaLIF -> Output, with per-neuron parameters and nonzero resets."""
    conv_w, conv_b = f32(2, 1, 3, 3), f32(2, low=0.0, high=0.3)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([1, 4, 4])}),
        "conv": nir.Conv2d(
            input_shape=(4, 4),
            weight=conv_w,
            stride=1,
            padding=1,
            dilation=1,
            groups=1,
            bias=conv_b,
        ),
        "if": nir.IF(
            r=f32(2, 4, 4, low=0.5, high=1.5),
            v_threshold=f32(2, 4, 4, low=0.5, high=1.0),
            v_reset=f32(2, 4, 4, low=-0.2, high=0.0),
        ),
        "sum": nir.SumPool2d(
            kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])
        ),
        "flat": nir.Flatten(input_type={"input": np.array([2, 2, 2])}, start_dim=0, end_dim=-1),
        "scale": nir.Scale(scale=f32(8, low=0.5, high=2.0)),
        "lin": nir.Linear(weight=f32(3, 8)),
        "lif": nir.LIF(
            tau=np.full(3, 4 * DT),
            r=np.array([1.0, 2.0, 3.0]),
            v_leak=np.array([0.0, 0.1, -0.1]),
            v_threshold=np.array([0.2, 0.3, 0.4]),
            v_reset=np.array([0.0, -0.1, 0.05]),
        ),
        "aff": nir.Affine(weight=f32(2, 3), bias=f32(2)),
        "cuba": nir.CubaLIF(
            tau_syn=np.full(2, 2 * DT),
            tau_mem=np.full(2, 5 * DT),
            r=np.array([5.0, 4.0]),
            v_leak=np.zeros(2),
            v_threshold=np.array([0.1, 0.2]),
            v_reset=np.zeros(2),
            w_in=np.array([1.0, 2.0]),
        ),
        "output": nir.Output(output_type={"output": np.array([2])}),
    }
    order = list(nodes)
    edges = list(zip(order[:-1], order[1:]))
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def reference(graph, x, steps):
    """The NIR equations, one Euler step of DT per timestep. x: [B, 1, 4, 4] -> [T, B, 2]."""
    n = {k: v for k, v in graph.nodes.items()}
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float64)  # noqa: E731
    x = x.double()
    v_if = torch.zeros(x.shape[0], 2, 4, 4, dtype=torch.float64)
    v_lif = torch.zeros(x.shape[0], 3, dtype=torch.float64)
    i_cuba = torch.zeros(x.shape[0], 2, dtype=torch.float64)
    v_cuba = torch.zeros_like(i_cuba)
    outs = []
    for _ in range(steps):
        cur = torch.nn.functional.conv2d(x, t(n["conv"].weight), t(n["conv"].bias), padding=1)
        v_if = v_if + t(n["if"].r) * cur
        s = (v_if > t(n["if"].v_threshold)).double()
        v_if = torch.where(s > 0, t(n["if"].v_reset), v_if)
        s = torch.nn.functional.avg_pool2d(s, 2, 2) * 4
        s = s.flatten(1) * t(n["scale"].scale)
        cur = s @ t(n["lin"].weight).T
        lif = n["lif"]
        v_lif = v_lif + DT / t(lif.tau) * (t(lif.v_leak) - v_lif + t(lif.r) * cur)
        s = (v_lif > t(lif.v_threshold)).double()
        v_lif = torch.where(s > 0, t(lif.v_reset), v_lif)
        cur = s @ t(n["aff"].weight).T + t(n["aff"].bias)
        c = n["cuba"]
        i_cuba = i_cuba + DT / t(c.tau_syn) * (t(c.w_in) * cur - i_cuba)
        v_cuba = v_cuba + DT / t(c.tau_mem) * (t(c.v_leak) - v_cuba + t(c.r) * i_cuba)
        s = (v_cuba > t(c.v_threshold)).double()
        v_cuba = torch.where(s > 0, t(c.v_reset), v_cuba)
        outs.append(s)
    return torch.stack(outs)


def test_plain_graph_from_another_tool_runs_by_nir_definitions(tmp_path):
    graph = plain_graph()
    path = tmp_path / "plain.nir"
    nir.write(path, graph)
    network = import_nir(path, dt=DT)
    x = torch.rand(16, 1, 4, 4, generator=torch.Generator().manual_seed(0)) * 2
    steps = 20
    network.reset()
    out = network(x.unsqueeze(0).expand(steps, *x.shape))
    expected = reference(graph, x, steps)
    assert expected.sum() > 0 and (expected == 0).any(), "the reference must spike, not saturate"
    assert torch.equal(out.double(), expected)
    sim = network.simulate(x, steps, record_spikes=True)
    assert set(sim.spikes) == {"if_", "lif", "cuba"}  # a Python keyword gets a trailing _


def test_nir_if_fires_above_threshold_not_at_it_and_resets_to_v_reset():
    nodes = {
        "input": nir.Input(input_type={"input": np.array([1])}),
        "if": nir.IF(r=np.ones(1), v_threshold=np.ones(1), v_reset=np.array([0.25])),
        "output": nir.Output(output_type={"output": np.array([1])}),
    }
    graph = nir.NIRGraph(nodes=nodes, edges=[("input", "if"), ("if", "output")], type_check=False)
    network = import_nir(graph)
    out = network(torch.full((7, 1, 1), 0.5)).flatten().tolist()
    # v: 0.5, 1.0 (not > 1), 1.5 fire -> 0.25, 0.75, 1.25 fire -> 0.25, 0.75, 1.25 fire
    assert out == [0, 0, 1, 0, 1, 0, 1]


def test_several_edges_into_a_node_are_summed_and_avgpool_is_read():
    w_a, w_b = f32(3, 4, seed=1), f32(3, 4, seed=2)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([1, 4, 4])}),
        "pool": nir.AvgPool2d(
            kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])
        ),
        "flat": nir.Flatten(input_type={"input": np.array([1, 2, 2])}, start_dim=0),
        "a": nir.Linear(weight=w_a),
        "b": nir.Linear(weight=w_b),
        "output": nir.Output(output_type={"output": np.array([3])}),
    }
    edges = [
        ("input", "pool"),
        ("pool", "flat"),
        ("flat", "a"),
        ("flat", "b"),
        ("a", "output"),
        ("b", "output"),
    ]
    network = import_nir(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False))
    x = torch.rand(5, 1, 4, 4)
    pooled = torch.nn.functional.avg_pool2d(x, 2).flatten(1)
    expected = pooled @ torch.from_numpy(w_a).T + pooled @ torch.from_numpy(w_b).T
    torch.testing.assert_close(network(x.unsqueeze(0))[0], expected)


def test_unsupported_nodes_recurrence_and_several_inputs_are_refused_by_name():
    def graph(nodes, edges):
        return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)

    inp = nir.Input(input_type={"input": np.array([2])})
    out = nir.Output(output_type={"output": np.array([2])})
    li = nir.LI(tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2))
    with pytest.raises(NIRImportError, match="'leaky' is a LI"):
        import_nir(
            graph(
                {"input": inp, "leaky": li, "output": out},
                [("input", "leaky"), ("leaky", "output")],
            )
        )
    lin = nir.Linear(weight=np.eye(2, dtype=np.float32))
    neuron = nir.IF(r=np.ones(2), v_threshold=np.ones(2))
    recurrent = {"input": inp, "w": lin, "n": neuron, "output": out}
    with pytest.raises(NIRImportError, match="recurrent edges"):
        import_nir(graph(recurrent, [("input", "n"), ("n", "w"), ("w", "n"), ("n", "output")]))
    two = {
        "input": inp,
        "input2": nir.Input(input_type={"input": np.array([2])}),
        "w": lin,
        "output": out,
    }
    with pytest.raises(NIRImportError, match="one input"):
        import_nir(graph(two, [("input", "w"), ("input2", "w"), ("w", "output")]))


def test_a_file_that_is_not_nir_is_refused(tmp_path):
    bad = tmp_path / "bad.nir"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(NIRImportError, match="not a readable NIR graph"):
        import_nir(bad)
    with pytest.raises(FileNotFoundError, match="no such file"):
        import_nir(tmp_path / "missing.nir")


def test_a_reset_to_zero_export_reads_the_same_without_metadata(tmp_path):
    """Nothing of a reset-to-zero IF network needs metadata: a reader that ignores it (NIR's IF,
    unit spikes, weights times theta rounded to float32) gives the same spikes."""
    x, _ = digits_tensors(train=False, n=64)
    calib, _ = digits_tensors(train=True, n=256)
    network = Converter(trained_digits("cnn"), calib).build("channel", reset="zero")
    path = tmp_path / "net.nir"
    with warnings.catch_warnings():
        warnings.simplefilter("error", NIRExportWarning)
        export_nir(network, path, input_shape=(1, 8, 8))
    plain = import_nir(path, use_metadata=False)
    a = network.simulate(x, 16, record_spikes=True)
    b = plain.simulate(x, 16, record_spikes=True)
    for layer in a.spikes:
        assert torch.equal(a.spikes[layer], b.spikes[layer]), layer
    torch.testing.assert_close(b.readout, a.readout, rtol=1e-4, atol=1e-5)


def test_a_subtractive_reset_export_read_without_metadata_is_another_network(tmp_path):
    """Why the export warns: NIR's IF resets to v_reset, so a reader ignoring the metadata resets
    to zero where spikebridge subtracts theta; with the metadata the network is exact."""
    x, _ = digits_tensors(train=False, n=64)
    calib, _ = digits_tensors(train=True, n=256)
    network = Converter(trained_digits("cnn"), calib).build("channel", reset="subtract")
    path = tmp_path / "net.nir"
    with pytest.warns(NIRExportWarning):
        export_nir(network, path, input_shape=(1, 8, 8))
    a = network.simulate(x, 16, record_spikes=True)
    plain = import_nir(path, use_metadata=False).simulate(x, 16, record_spikes=True)
    exact = import_nir(path).simulate(x, 16, record_spikes=True)
    assert any(not torch.equal(a.spikes[k], plain.spikes[k]) for k in a.spikes)
    assert all(torch.equal(a.spikes[k], exact.spikes[k]) for k in a.spikes)


def small_graph(**changes):
    """Input [4] -> Linear [3, 4] -> IF [3] -> Output, with ``changes`` replacing nodes."""
    nodes = {
        "input": nir.Input(input_type={"input": np.array([4])}),
        "lin": nir.Linear(weight=f32(3, 4)),
        "if": nir.IF(r=np.ones(3), v_threshold=np.full(3, 0.5), v_reset=np.zeros(3)),
        "output": nir.Output(output_type={"output": np.array([3])}),
    }
    nodes.update(changes)
    order = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(order[:-1], order[1:])), type_check=False)


def test_the_small_graph_imports_and_runs():
    network = import_nir(small_graph())
    assert network(torch.ones(3, 2, 4)).shape == (3, 2, 3)


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(lin=nir.Linear(weight=f32(3, 5))), r"node 'lin' \(Linear\) does not fit its input of shape \[4\]"),
        (dict(lin=nir.Affine(weight=f32(3, 4), bias=f32(2))), r"node 'lin' \(Affine\): .*size of tensor"),
        (dict(**{"if": nir.IF(r=np.ones(5), v_threshold=np.ones(5), v_reset=np.zeros(5))}), r"node 'if' \(IF\) does not fit its input of shape \[3\]"),
        (dict(**{"if": nir.IF(r=np.ones(3), v_threshold=np.array([0.5, np.nan, 0.5]), v_reset=np.zeros(3))}), r"node 'if' \(IF\): v_threshold must be finite and >= 0.*1 of its 3"),
        (dict(**{"if": nir.IF(r=np.ones(3), v_threshold=np.array([0.5, -1.0, 0.5]), v_reset=np.zeros(3))}), r"node 'if' \(IF\): v_threshold must be finite and >= 0"),
        (dict(lin=nir.Linear(weight=np.full((3, 4), np.nan, dtype=np.float32))), r"node 'lin' \(Linear\): weight must be finite numbers.*12 of its 12"),
        (dict(lin=nir.Affine(weight=f32(3, 4), bias=np.array([0, np.inf, 0], dtype=np.float32))), r"node 'lin' \(Affine\): bias must be finite"),
        (dict(**{"if": nir.LIF(tau=np.array([1e-3, 0.0, 1e-3]), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3), v_reset=np.zeros(3))}), r"node 'if' \(LIF\): tau must be finite and > 0"),
        (dict(**{"if": nir.CubaLIF(tau_syn=np.full(3, -1e-3), tau_mem=np.full(3, 1e-3), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3), v_reset=np.zeros(3), w_in=np.ones(3))}), r"node 'if' \(CubaLIF\): tau_syn must be finite and > 0"),
    ],
    ids=["linear-in-features", "affine-bias-size", "neuron-parameters-size", "nan-threshold",
         "negative-threshold", "nan-weights", "inf-bias", "tau-zero", "tau-syn-negative"],
)  # fmt: skip
def test_a_node_that_cannot_run_is_refused_at_import_naming_it_and_the_field(changes, message):
    with pytest.raises(NIRImportError, match=message):
        import_nir(small_graph(**changes))


def test_inputs_of_different_shapes_summed_are_refused_naming_the_node():
    nodes = {
        "input": nir.Input(input_type={"input": np.array([4])}),
        "a": nir.Linear(weight=f32(3, 4)),
        "b": nir.Linear(weight=f32(2, 4)),
        "output": nir.Output(output_type={"output": np.array([3])}),
    }
    edges = [("input", "a"), ("input", "b"), ("a", "output"), ("b", "output")]
    graph = nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
    with pytest.raises(NIRImportError, match=r"node 'output' \(Output\) sums inputs of different "
                       r"shapes: 'a' \[3\], 'b' \[2\]"):  # fmt: skip
        import_nir(graph)


def _with_facts(node, **facts):
    node.metadata = {"spikebridge": facts}
    return node


@pytest.mark.parametrize(
    "facts, message",
    [
        (dict(neuron="SignedIFNeuron"), r"node 'if': its spikebridge metadata lacks 'alpha'"),
        (dict(neuron="LIFNeuron", threshold=0.5), r"node 'if': its spikebridge metadata lacks 'tau_decay'"),
        (dict(neuron="LIFNeuron", threshold=0.5, tau_decay=0.0), r"node 'if': spikebridge metadata 'tau_decay' must be finite and > 0"),
        (dict(neuron="LIFNeuron", threshold="high", tau_decay=0.5), r"node 'if': spikebridge metadata 'threshold' must be a number"),
        (dict(neuron="IFNeuron", initial_potential=float("nan")), r"node 'if' \(IF\): spikebridge metadata 'initial_potential' must be finite"),
        (dict(neuron="IFNeuron", reset="sideways"), r"node 'if' \(IF\): reset must be one of"),
    ],
    ids=["signed-if-no-alpha", "lif-no-tau", "lif-tau-zero", "lif-threshold-text", "nan-initial-potential", "unknown-reset"],
)  # fmt: skip
def test_bad_spikebridge_metadata_is_a_named_error_not_a_key_error(facts, message):
    neuron = _with_facts(
        nir.IF(r=np.ones(3), v_threshold=np.full(3, 0.5), v_reset=np.zeros(3)), **facts
    )
    graph = small_graph(**{"if": neuron})
    with pytest.raises(NIRImportError, match=message):
        import_nir(graph)
    import_nir(graph, use_metadata=False)  # NIR's own reading ignores the metadata


def test_missing_adaptive_pool_size_is_named_and_checks_hold_for_a_file(tmp_path):
    pool = _with_facts(
        nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        op="adaptive_avg_pool",
    )  # fmt: skip
    nodes = {
        "input": nir.Input(input_type={"input": np.array([1, 4, 4])}),
        "pool": pool,
        "output": nir.Output(output_type={"output": np.array([1, 2, 2])}),
    }
    graph = nir.NIRGraph(
        nodes=nodes, edges=[("input", "pool"), ("pool", "output")], type_check=False
    )
    with pytest.raises(
        NIRImportError, match=r"node 'pool': its spikebridge metadata lacks 'output_size'"
    ):
        import_nir(graph)
    path = tmp_path / "nan.nir"
    bad = nir.IF(r=np.ones(3), v_threshold=np.array([np.nan, 1, 1]), v_reset=np.zeros(3))
    nir.write(path, small_graph(**{"if": bad}))
    with pytest.raises(NIRImportError, match=r"node 'if' \(IF\): v_threshold"):
        import_nir(path)
