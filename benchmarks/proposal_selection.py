"""Where Faster R-CNN's proposal selection runs, decided by measurement: three ways of turning
the RPN's per-anchor scores and boxes into the P proposals the head pools, from the same trained
weights (recipes/shapes_faster_rcnn.yaml), each converted to fp32 and run by LiteRT on the CPU:

- ``top-K in graph`` (what edgecnn ships): TOPK_V2 + GATHER inside the one file, no NMS.
- ``top-K + NMS in graph``: the best ``--pre-nms`` boxes by TOPK_V2, NON_MAX_SUPPRESSION_V4
  (IoU 0.7, padded to P) and a GATHER, inside the one file.
- ``two invokes, NMS in runtime``: file 1 ends at the feature map and the decoded RPN boxes;
  NumPy picks the best ``--pre-nms``, runs NMS (IoU 0.7) and pads to P; file 2 pools and
  classifies them (the feature map crosses between the invokes).

Per variant: mAP@.5 and mAP of the 300 held-out builtin:shapes images (the runtime's decoding),
proposal recall (share of ground-truth boxes with a proposal at IoU >= 0.5), per-image latency of
the whole pipeline (letterbox, invokes, selection, decoding; interleaved by rounds), file size,
and whether the fp16 file(s) compile for LiteRT's GPU accelerator with every op on it (here
SwiftShader: a compatibility check, not a timing).

    python benchmarks/proposal_selection.py [--runs DIR] [--images 100] [--rounds 3] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from recipe_runs import trained_model  # benchmarks/, beside this script
from rounds import timed_rounds

NMS_IOU = 0.7  # Faster R-CNN's RPN NMS overlap


def _nms_model(model, pre_nms: int):
    """The deployed graph with the proposal layer replaced by top-K + NMS (same weights)."""
    from edgecnn._keras import keras, tf
    from edgecnn.models.detector_families import deployed_model

    class NmsProposals(keras.layers.Layer):
        def __init__(self, count: int, **kwargs) -> None:
            super().__init__(**kwargs)
            self.count = count

        def call(self, inputs):
            scores, boxes = inputs
            scores, boxes = tf.reshape(scores, (-1,)), tf.reshape(boxes, (-1, 4))
            best_scores, best = tf.math.top_k(scores, k=pre_nms, sorted=True)
            best_boxes = tf.gather(boxes, best)
            # IoU does not care whether a box is (y1 x1 y2 x2) or (x1 y1 x2 y2); padding repeats box 0
            kept, _ = tf.raw_ops.NonMaxSuppressionV4(boxes=best_boxes, scores=best_scores,
                                                     max_output_size=self.count, iou_threshold=NMS_IOU,
                                                     score_threshold=float(np.finfo(np.float32).min),
                                                     pad_to_max_output_size=True)
            return tf.reshape(tf.gather(best_boxes, kept), (1, self.count, 4))

    def clone(layer):
        if layer.name == "proposals":
            return NmsProposals(layer.count, name="proposals")
        return layer.__class__.from_config(layer.get_config())

    deployed = deployed_model(model)
    copy = keras.models.clone_model(deployed, clone_function=clone)
    copy.set_weights(deployed.get_weights())
    return copy


def _split_models(model):
    """(image -> feature map, RPN logits, decoded RPN boxes), ((feature map, proposals) -> class
    scores, box deltas), on the trained layers."""
    from edgecnn._keras import keras

    roi = model.get_layer("roi_align")
    features = roi.input[0]
    first = keras.Model(model.input, [features, model.get_layer("rpn_scores").output,
                                      model.get_layer("rpn_decode").output], name="rpn_stage")
    count = int(model.get_layer("proposals").count)
    features_in = keras.Input(features.shape[1:], batch_size=1, name="features")
    proposals_in = keras.Input((count, 4), batch_size=1, name="proposals")
    x = model.get_layer("head_fc2")(model.get_layer("head_fc1")(roi([features_in, proposals_in])))
    second = keras.Model([features_in, proposals_in],
                         [model.get_layer("class_scores")(x), model.get_layer("box_deltas")(x)], name="head_stage")
    return first, second


def _runner(model, threads: int):
    from edgecnn.export.convert import convert
    from edgecnn.runtime.runner import Runner

    data = convert(model, "fp32")
    return data, Runner(data, "cpu", threads)


def _gpu_status(models) -> str:
    """Whether each model's fp16 file runs wholly on LiteRT's GPU accelerator, and if not, the
    op kinds it rejects (each compiled alone, as the conversion report does)."""
    from edgecnn.export.convert import convert
    from edgecnn.export.report import gpu_check
    from edgecnn.runtime.engine import load_engine

    states = []
    for model in models:
        data = convert(model, "fp16")
        engine = load_engine(data)
        check = gpu_check(data, engine, tuple(np.zeros(i.shape, np.float32) for i in engine.inputs), None)
        if check["fully_accelerated"] is None:
            states.append(f"no GPU accelerator ({check['error']})")
        elif check["fully_accelerated"]:
            states.append("all ops on GPU")
        else:
            states.append(f"GPU rejects {', '.join(check['unsupported_ops']) or 'some op'}")
    return "; ".join(states)


def _by_rank(runner, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """The arrays in the file's input order (matched by rank: feature map 4-D, boxes 3-D)."""
    return [next(a for a in arrays if a.ndim == len(info.shape)) for info in runner.inputs]


def _rpn_outputs(outputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """File 1's outputs -> feature map (1, H, W, C), RPN logits (N,), boxes (N, 4)."""
    features = next(o for o in outputs if o.ndim == 4)
    scores = next(o for o in outputs if o.ndim == 3 and o.shape[-1] == 1)
    boxes = next(o for o in outputs if o.ndim == 3 and o.shape[-1] == 4)
    return features, scores.reshape(-1), boxes.reshape(-1, 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs/two_stage", type=Path)
    parser.add_argument("--images", default=100, type=int)
    parser.add_argument("--threads", default=2, type=int)
    parser.add_argument("--rounds", default=3, type=int)
    parser.add_argument("--pre-nms", default=300, type=int)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import edgecnn
    from edgecnn.data.detection import DetectionSet, load_detection_samples
    from edgecnn.data.specs import parse_spec
    from edgecnn.evaluation.metrics import EVAL_MAX_DETECTIONS, EVAL_SCORE_THRESHOLD, coco_map
    from edgecnn.models.detector_families import deployed_model
    from edgecnn.models.faster_rcnn import region_layout
    from edgecnn.runtime.detection import batched_nms, iou_matrix
    from edgecnn.runtime.images import letterbox
    from edgecnn.runtime.regions import padded_proposals, region_postprocess

    model = edgecnn.load_model(trained_model("shapes_faster_rcnn.yaml", args.runs))
    layout = region_layout(model)
    count, weights = layout["proposals"], tuple(layout["delta_weights"])
    first, second = _split_models(model)
    single_data, single = _runner(deployed_model(model), args.threads)
    nms_data, nms = _runner(_nms_model(model, args.pre_nms), args.threads)
    first_data, stage1 = _runner(first, args.threads)
    second_data, stage2 = _runner(second, args.threads)

    def one_file(runner):
        def infer(batch):
            return runner(batch)  # proposals, class scores, box deltas
        return infer

    def two_invokes(batch):
        features, scores, boxes = _rpn_outputs(stage1(batch))
        best = np.argpartition(-scores, args.pre_nms)[:args.pre_nms]
        kept = batched_nms(boxes[best], scores[best], np.zeros(len(best), np.int64), NMS_IOU, count)
        proposals, _ = padded_proposals(boxes[best][kept], count)
        class_scores, box_deltas = sorted(stage2(*_by_rank(stage2, [features, proposals[None]])),
                                          key=lambda o: o.shape[-1])  # K + 1 < 4K columns
        return proposals[None], class_scores, box_deltas

    def detect_dataset_two_stage(one: DetectionSet, size, infer, weights) -> list:
        """The runtime Detector's steps for a Faster R-CNN file (letterbox, invoke, decode, map
        back), with ``infer`` standing for the file: the variants here are graphs the runtime
        does not ship, so they cannot be opened as its pipeline."""
        found = []
        for sample in one.samples:
            letterboxed, fit = letterbox(sample.image, size[0], size[1])
            proposals, class_scores, box_deltas = infer(letterboxed[None].astype(np.float32) / 255.0)
            result = region_postprocess(proposals[0], class_scores[0], box_deltas[0], size[:2], weights,
                                        EVAL_SCORE_THRESHOLD, 0.5, EVAL_MAX_DETECTIONS)
            result.boxes = fit.to_original(result.boxes, sample.image.shape[1], sample.image.shape[0])
            found.append((sample.image_id, result))
        return found

    variants = {"top-K in graph (shipped)": (one_file(single), [single_data]),
                "top-K + NMS in graph": (one_file(nms), [nms_data]),
                "two invokes, NMS in runtime": (two_invokes, [first_data, second_data])}
    gpu = {"top-K in graph (shipped)": _gpu_status([deployed_model(model)]),
           "top-K + NMS in graph": _gpu_status([_nms_model(model, args.pre_nms)]),
           "two invokes, NMS in runtime": _gpu_status([first, second])}
    dataset = load_detection_samples(parse_spec("builtin:shapes"), "val", None)
    size = tuple(int(d) for d in model.input_shape[1:])
    results = {}
    for name, (infer, files) in variants.items():
        found, recall = [], []
        for sample in dataset.samples:  # one image at a time, to see each one's proposals
            outputs = []

            def recording(batch, infer=infer, outputs=outputs):
                outputs.extend(infer(batch))
                return outputs

            found += detect_dataset_two_stage(DetectionSet([sample], dataset.classes, dataset.source), size, recording, weights)
            if len(sample.boxes):
                _, fit = letterbox(sample.image, size[0], size[1])
                proposals = fit.to_original(outputs[0][0], sample.image.shape[1], sample.image.shape[0])
                recall += list(iou_matrix(sample.boxes, proposals).max(axis=1) >= 0.5)
        metrics = coco_map(dataset, found)
        results[name] = {"map50": metrics["map50"], "map": metrics["map"], "proposal_recall": float(np.mean(recall)),
                         "size_bytes": sum(len(d) for d in files), "fp16_gpu": gpu[name], "pipeline_ms": []}
    images = [DetectionSet([sample], dataset.classes, dataset.source) for sample in dataset.samples[:args.images]]
    timings = timed_rounds({name: lambda one, infer=infer: detect_dataset_two_stage(one, size, infer, weights)
                            for name, (infer, _) in variants.items()}, images, args.rounds)
    for name, row in results.items():
        row["pipeline_ms"] = timings[name]
    print(f"\nFaster R-CNN (shapes recipe, {count} proposals, pre-NMS {args.pre_nms}), fp32, LiteRT CPU, "
          f"{args.threads} threads; latency over {len(images)} images x {args.rounds} rounds")
    print(f"{'variant':<30}{'mAP@.5':>8}{'mAP':>8}{'recall':>8}{'p50 ms':>9}{'p90 ms':>9}{'bytes':>11}  fp16 on GPU")
    for name, row in results.items():
        timings = row.pop("pipeline_ms")
        row["pipeline_ms"] = {"p50": float(np.median(timings)), "p90": float(np.percentile(timings, 90))}
        print(f"{name:<30}{row['map50']:>8.3f}{row['map']:>8.3f}{row['proposal_recall']:>8.3f}"
              f"{row['pipeline_ms']['p50']:>9.2f}{row['pipeline_ms']['p90']:>9.2f}{row['size_bytes']:>11,}  "
              f"{row['fp16_gpu']}")
    if args.json:
        args.json.write_text(json.dumps({"threads": args.threads, "images": len(images), "pre_nms": args.pre_nms,
                                         "variants": results}, indent=2))


if __name__ == "__main__":
    main()
