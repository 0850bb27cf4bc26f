"""Models to measure: subnets of a supernet and the distinct blocks they are built from.

Latency does not depend on weight values, so profiling extracts subnets and blocks from a
freshly initialised supernet (`Supernet.extract`, `extract_embedding`, `extract_layer`,
`extract_head`). onnxruntime backends measure the files `supernet.export_onnx` writes of
them; torch backends measure the modules.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from supernet import Arch, InputSpec, LayerConfig, SearchSpace

from ._device import DeviceSpec


def arch_key(arch: Arch) -> str:
    """A short stable file name for an architecture."""
    return hashlib.sha1(arch.to_json().encode()).hexdigest()[:16]


def onnx_path_for(arch: Arch, spec: InputSpec, folder: Path) -> Path:
    """Where `model_for` keeps the ONNX file of `arch` at this input spec."""
    return Path(folder) / f"{arch_key(arch)}-n{spec.seq_len}.onnx"


def onnx_model(net: Any, arch: Arch, folder: Path) -> Path:
    """The ONNX file of `arch` in `folder`, exported unless it is there already."""
    from supernet import export_onnx

    path = onnx_path_for(arch, net.spec, folder)
    if not path.exists():
        export_onnx(net.extract(arch), path, check=False)
    return path


def model_for(net: Any, arch: Arch, device: DeviceSpec, folder: Path) -> Any:
    """What the device's backend measures for `arch`: a torch module or an ONNX path in `folder`."""
    return net.extract(arch) if device.is_torch else onnx_model(net, arch, folder)


_HELPER_NETS: dict[str, Any] = {}


def export_in_helper(space: dict[str, Any], spec: dict[str, Any], seed: int, archs: list[str], folder: str,
                     blocks: list[dict[str, Any]] = ()) -> None:
    """Export `archs` (JSON) and `blocks` (`BlockKey` fields) of `Supernet(space, spec, seed)` into
    `folder` as `model_for` and `block_onnx` would: run in the helper process (`ExportHelper`),
    which builds the supernet once."""
    import torch

    from supernet import Supernet

    key = json.dumps([space, spec, seed], sort_keys=True)
    if key not in _HELPER_NETS:
        torch.set_num_threads(1)
        _HELPER_NETS.clear()
        _HELPER_NETS[key] = Supernet(SearchSpace.from_dict(space), InputSpec(**spec), seed=seed)
    for text in archs:
        onnx_model(_HELPER_NETS[key], Arch.from_json(text), Path(folder))
    for fields in blocks:
        block_onnx(_HELPER_NETS[key], BlockKey(**fields), Path(folder))


class ExportHelper:
    """A second Python process exporting half of each batch of ONNX files while this one exports
    the other half: exporting is single-threaded Python work (about 0.4 s a subnet), so on two
    cores the profile's exports take about half the time. Nothing is measured while it works.

    A plain subprocess reading one JSON job per line (not multiprocessing, which would import
    the caller's main script again in the child).
    """

    def __init__(self, space: SearchSpace, spec: InputSpec, seed: int) -> None:
        import os
        import subprocess
        import sys

        self.args = {"space": space.to_dict(), "spec": spec.to_dict(), "seed": seed}
        root = str(Path(__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from hwprofiles._models import serve_exports; serve_exports()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self._answers = 0  # jobs sent whose answer is still to be read
        self._send({"archs": [], "folder": ""})  # an empty job: the helper builds its supernet meanwhile

    def _send(self, job: dict[str, Any]) -> None:
        self.process.stdin.write(json.dumps({**self.args, **job}) + "\n")
        self.process.stdin.flush()
        self._answers += 1

    def _run(self, job: dict[str, Any], here: Callable[[], None]) -> None:
        """Send `job` to the helper, do this process's half (`here`), wait for the helper's."""
        self._send(job)
        here()
        while self._answers:
            answer = self.process.stdout.readline().strip()
            self._answers -= 1
            if answer != "ok":
                raise RuntimeError(f"the export helper process failed: {answer or 'it exited'}")

    def models(self, net: Any, archs: list[Arch], device: DeviceSpec, folder: Path) -> list[Path]:
        """`model_for` of each arch, every second missing file exported by the helper."""
        missing = [a for a in archs if not onnx_path_for(a, net.spec, folder).exists()]
        job = {"archs": [a.to_json() for a in missing[1::2]], "folder": str(folder)}
        self._run(job, lambda: [onnx_model(net, a, folder) for a in missing[0::2]])
        return [model_for(net, a, device, folder) for a in archs]

    def blocks(self, net: Any, keys: list[BlockKey], folder: Path) -> list[tuple[Path, tuple[int, int]]]:
        """`block_onnx` of each block, half of them exported by the helper: the second and third of
        every four, since `block_keys` alternates fp32 and int8 (slower to export) layer blocks."""
        theirs = [k for i, k in enumerate(keys) if i % 4 in (1, 2)]
        job = {"archs": [], "blocks": [asdict(k) for k in theirs], "folder": str(folder)}
        self._run(job, lambda: [block_onnx(net, k, folder) for i, k in enumerate(keys) if i % 4 in (0, 3)])
        return [block_onnx(net, k, folder) for k in keys]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=30)


def serve_exports() -> None:
    """The helper's loop: one JSON job per line on stdin (`export_in_helper`'s arguments),
    one line back on stdout: "ok", or the error."""
    import sys

    out, sys.stdout = sys.stdout, sys.stderr  # anything the exporters print stays off the answer channel
    for line in sys.stdin:
        job = json.loads(line)
        try:
            export_in_helper(job["space"], job["spec"], job["seed"], job["archs"], job["folder"], job.get("blocks", []))
            answer = "ok"
        except Exception as exc:  # reported to the caller, which raises it
            answer = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        out.write(answer + "\n")
        out.flush()


# ----------------------------------------------------------------------------- blocks
BLOCK_KINDS = ("embed", "layer", "head")


@dataclass(frozen=True)
class BlockKey:
    """One distinct block: a transformer layer (`kind="layer"`), the embedding, or the head."""

    kind: str
    embed_dim: int
    heads: int = 0
    ffn_ratio: int = 0
    attention: str = ""
    quant: str = ""

    def __post_init__(self) -> None:
        if self.kind not in BLOCK_KINDS:
            raise ValueError(f"block kind must be one of {BLOCK_KINDS}, got {self.kind!r}")

    @property
    def name(self) -> str:
        if self.kind != "layer":
            return f"{self.kind}.E{self.embed_dim}"
        return f"layer.E{self.embed_dim}.h{self.heads}.r{self.ffn_ratio}.{self.attention}.{self.quant}"


def block_keys(space: SearchSpace) -> list[BlockKey]:
    """Every distinct block of the space: embeddings and heads per width, then each layer combination."""
    keys = [BlockKey(kind, e) for e in space.embed_dims for kind in ("embed", "head")]
    for e in space.embed_dims:
        for h in space.heads:
            for r in space.ffn_ratios:
                for a in space.attentions:
                    for q in space.quants:
                        keys.append(BlockKey("layer", e, h, r, a, q))
    return keys


def arch_blocks(arch: Arch) -> Iterator[BlockKey]:
    """The blocks `arch` is made of (a layer block once per layer)."""
    e = arch.embed_dim
    yield BlockKey("embed", e)
    for layer in arch.layers:
        yield BlockKey("layer", e, layer.heads, layer.ffn_ratio, layer.attention, layer.quant)
    yield BlockKey("head", e)


def block_module(net: Any, key: BlockKey) -> Any:
    """A standalone torch module for one block, cut from `net` (`supernet.SubnetPart`)."""
    if key.kind == "layer":
        return net.extract_layer(key.embed_dim, LayerConfig(key.heads, key.ffn_ratio, key.attention, key.quant))
    if key.kind == "embed":
        return net.extract_embedding(key.embed_dim)
    return net.extract_head(key.embed_dim)


def block_model_for(net: Any, key: BlockKey, device: DeviceSpec, folder: Path) -> tuple[Any, tuple[int, int]]:
    """(model, (tokens, features) of one input example) of one block for the device's backend.

    The embedding reads the raw sequence; layers and head read the tokens (with the class
    token, when the readout uses one). ONNX files are cached in `folder` by block and tokens.
    """
    if device.is_torch:
        module = block_module(net, key)
        return module, module.input_shape()
    return block_onnx(net, key, folder)


def block_onnx(net: Any, key: BlockKey, folder: Path) -> tuple[Path, tuple[int, int]]:
    """(ONNX file in `folder`, exported unless it is there already; input example shape) of one block."""
    from supernet import export_onnx

    module = block_module(net, key)
    shape = module.input_shape()
    path = Path(folder) / f"block-{key.name}-n{shape[0]}.onnx"
    if not path.exists():
        export_onnx(module, path, check=False)
    return path, shape


def deploy_spec(spec: InputSpec, device: DeviceSpec) -> InputSpec:
    """The input spec with the device's sequence length, when it sets one."""
    if device.seq_len is None or device.seq_len == spec.seq_len:
        return spec
    return spec.with_seq_len(device.seq_len)
