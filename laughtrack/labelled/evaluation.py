"""How good the events are against labels: per label, segment- and event-based precision, recall
and F1 from sed_eval (the DCASE reference implementation), plus onset/offset error of matched
events and per-minute seconds error (laughtrack's own unit). Pure: labels and events in, scores out.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np

from laughtrack.density import minute_count, overlaps, union
from laughtrack.labelled.labels import Label

SEGMENT_S = 1.0      # segment-based resolution (DCASE's usual 1 s)
COLLAR_S = 0.5       # event-based onset collar: about two hops of the default 0.6/0.3 windows
CAPTION_COLLAR_S = 2.0   # ... when labels come from captions: a captioner times a cue to a second or two


def collar_for(coarse: bool, asked_s: float) -> float:
    """The event collar to score with: as asked, widened to CAPTION_COLLAR_S for caption labels
    (whose onsets are the captioner's, not the sound's); segment scores (1 s) are the ones to read first."""
    return max(asked_s, CAPTION_COLLAR_S) if coarse else asked_s


@dataclass(frozen=True, slots=True)
class FileEval:
    """One labelled media file: its reference labels and the events laughtrack found."""

    path: str
    duration_s: float
    reference: tuple[Label, ...]
    estimate: tuple[Label, ...]


@dataclass(frozen=True, slots=True)
class LabelScore:
    """The scores of one label (or `overall`: sed_eval's micro averages, the other errors pooled)."""

    label: str
    n_ref: int
    n_est: int
    segment_precision: float
    segment_recall: float
    segment_f1: float
    event_precision: float
    event_recall: float
    event_f1: float
    onset_error_s: float        # median |onset difference| of reference events matched by overlap
    offset_error_s: float
    minute_error_s: float       # mean |seconds per minute, laughtrack - labels|
    minute_error_max_s: float

    def to_json(self) -> dict:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


def score(files: list[FileEval], labels: tuple[str, ...], collar_s: float = COLLAR_S) -> list[LabelScore]:
    """One LabelScore per label, then `overall`."""
    with warnings.catch_warnings():     # its dcase_util imports pkg_resources (see pyproject's pin)
        warnings.simplefilter("ignore", UserWarning)
        import sed_eval                 # imported here: ~1 s, and only `eval` and `tune` need it
    seg = sed_eval.sound_event.SegmentBasedMetrics(event_label_list=list(labels), time_resolution=SEGMENT_S)
    evt = sed_eval.sound_event.EventBasedMetrics(event_label_list=list(labels), t_collar=collar_s,
                                                 evaluate_onset=True, evaluate_offset=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)     # sed_eval's "mean of empty slice" on NaN classes
        for f in files:
            ref, est = _events(f.path, f.reference, labels), _events(f.path, f.estimate, labels)
            seg.evaluate(reference_event_list=ref, estimated_event_list=est, evaluated_length_seconds=f.duration_s)
            evt.evaluate(reference_event_list=ref, estimated_event_list=est)
        seg_cw, evt_cw = seg.results_class_wise_metrics(), evt.results_class_wise_metrics()
        seg_all, evt_all = seg.results_overall_metrics()["f_measure"], evt.results_overall_metrics()["f_measure"]
    out = []
    for label in labels:
        out.append(_row(label, files, [label], seg_cw[label]["f_measure"], evt_cw[label]["f_measure"]))
    out.append(_row("overall", files, list(labels), seg_all, evt_all))
    return out


def _events(path: str, labels: tuple[Label, ...], keep: tuple[str, ...]) -> list[dict]:
    return [{"file": path, "event_label": lab.label, "onset": lab.start_s, "offset": lab.end_s}
            for lab in labels if lab.label in keep]


def _row(name: str, files: list[FileEval], labels: list[str], seg: dict, evt: dict) -> LabelScore:
    onsets, offsets, minute = [], [], []
    n_ref = n_est = 0
    for f in files:
        for label in labels:
            ref = [x for x in f.reference if x.label == label]
            est = [x for x in f.estimate if x.label == label]
            n_ref, n_est = n_ref + len(ref), n_est + len(est)
            for r in ref:
                hits = [e for e in est if e.start_s < r.end_s and e.end_s > r.start_s]
                if hits:
                    best = min(hits, key=lambda e: abs(e.start_s - r.start_s))
                    onsets.append(abs(best.start_s - r.start_s))
                    offsets.append(abs(best.end_s - r.end_s))
            minute += list(np.abs(per_minute(ref, f.duration_s) - per_minute(est, f.duration_s)))
    nan = float("nan")
    missed = n_ref > 0      # labels exist: finding nothing scores 0, not "undefined"
    return LabelScore(name, n_ref, n_est, _f(seg["precision"]), _f(seg["recall"]), _f(seg["f_measure"], missed),
                      _f(evt["precision"]), _f(evt["recall"]), _f(evt["f_measure"], missed),
                      float(np.median(onsets)) if onsets else nan, float(np.median(offsets)) if offsets else nan,
                      float(np.mean(minute)) if minute else nan, float(np.max(minute)) if minute else nan)


def per_minute(labels: list[Label], duration_s: float) -> np.ndarray:
    """Seconds of the union of `labels` in each minute (overlapping labels of a kind count once)."""
    duration_ms = round(duration_s * 1000)
    out = np.zeros(minute_count(duration_ms))
    for a, b in union([(round(x.start_s * 1000), min(round(x.end_s * 1000), duration_ms)) for x in labels]):
        for m, ms in overlaps(a, b):
            if m < len(out):
                out[m] += ms / 1000
    return out


def _f(value, zero_if_nan: bool = False) -> float:
    value = float(value) if value is not None else float("nan")
    return 0.0 if zero_if_nan and math.isnan(value) else value

