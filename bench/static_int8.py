"""Per-frame speed of the CPU runners: torch fp32, dynamic int8 (the default), static calibrated
int8 (QDQ, per tensor and per channel), 1 and 2 threads; and whether each is batch-invariant.

    python -m bench.static_int8        # full-size random model (bench/fullsize.py), ~4 minutes

64 scan windows of 0.6 s from a synthetic talk; static calibration: MinMax over 128 such windows.
"""
import atexit
import shutil
import tempfile
import time
from pathlib import Path
import numpy as np
from sensevoice_core import load_model
from sensevoice_core.frontend import Frontend
from sensevoice_core.backends import OrtRunner
from sensevoice_core.torch_backend import export_fp32
from laughtrack.synthetic import synth
from bench.__main__ import talk_timeline, DEFAULT_FULLSIZE
import onnxruntime as ort
from onnxruntime.quantization import quantize_static, quantize_dynamic, QuantType, QuantFormat, CalibrationDataReader, CalibrationMethod


class Reader(CalibrationDataReader):
    """Calibration batches: 8 x 16 scan windows."""

    def __init__(self, feats):
        self.batches = [feats[i:i+16] for i in range(0, 128, 16)]
    def get_next(self):
        if not self.batches: return None
        b = self.batches.pop(0)
        x = np.stack(b).astype(np.float32)
        return {"feats": x, "lengths": np.full(len(b), x.shape[1], np.int64), "queries": np.tile(np.array([[0,1,2,15]], np.int64), (len(b),1))}


def main() -> None:
    full = load_model(DEFAULT_FULLSIZE, device="cpu", backend="torch")
    audio = synth.render(synth.parse_timeline(talk_timeline(60, 3)))[0]
    W = 9600
    wins = [audio[s:s+W] for s in range(0, len(audio)-W, 4800)]
    feats = [f.cpu().numpy() for f in full.frontend.window_features(wins)]
    print("windows", len(feats), feats[0].shape, flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="laughtrack-static-int8-"))
    atexit.register(shutil.rmtree, tmp, True)   # ~1.7 GB of ONNX files
    fp32 = tmp / "fp32.onnx"
    export_fp32(full.module, fp32)
    dyn = tmp / "dyn.onnx"; quantize_dynamic(str(fp32), str(dyn), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
    t0 = time.time()
    sta = tmp / "static.onnx"
    quantize_static(str(fp32), str(sta), Reader(feats), quant_format=QuantFormat.QDQ, op_types_to_quantize=["MatMul"],
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=False,
                    calibrate_method=CalibrationMethod.MinMax, extra_options={"ActivationSymmetric": False})
    print("static quantize s", round(time.time()-t0,1), flush=True)
    sta2 = tmp / "static_pc.onnx"
    quantize_static(str(fp32), str(sta2), Reader(feats), quant_format=QuantFormat.QDQ, op_types_to_quantize=["MatMul"],
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                    calibrate_method=CalibrationMethod.MinMax)
    torch_runner = full.runner
    batch = feats[:64]
    x, lengths = Frontend.batch(batch)

    def bench(runner):
        runner(x, lengths, (0,1,2,15))
        best = 1e9
        for _ in range(3):
            t = time.perf_counter(); runner(x, lengths, (0,1,2,15)); best = min(best, time.perf_counter()-t)
        return 64*(len(batch[0])+4)/best
    print("torch fp32 threads 2", round(bench(torch_runner)), "frames/s", flush=True)
    for name, path in (("dynamic", dyn), ("static QDQ", sta), ("static QDQ per-channel", sta2)):
        for th in (2, 1):
            print(name, "threads", th, round(bench(OrtRunner(path, th))), "frames/s", flush=True)
    # batch-invariance of static
    tags = full.tag_queries
    r = OrtRunner(sta, 2)
    a = r(x[:8], lengths[:8], (0,1,2,15), tags).tag_logp["event"]
    b = r(x[:1], lengths[:1], (0,1,2,15), tags).tag_logp["event"]
    print("static batch-invariance max diff", float(np.abs(a[0]-b[0]).max()))
    r = OrtRunner(dyn, 2)
    a = r(x[:8], lengths[:8], (0,1,2,15), tags).tag_logp["event"]
    b = r(x[:1], lengths[:1], (0,1,2,15), tags).tag_logp["event"]
    print("dynamic batch-invariance max diff", float(np.abs(a[0]-b[0]).max()))


if __name__ == "__main__":
    main()
