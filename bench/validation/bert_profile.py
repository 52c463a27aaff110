#!/usr/bin/env python3
"""Write a dtsim model profile of BERT-base pre-training (sequence 128, 20 masked positions) from its
shapes and FLOPs, for the published-measurement studies (docs/validation.md, "Published measurements").

  python3 bench/validation/bert_profile.py [OUT]    # default traces/profiles/bert-base-seq128.profile.json

Nothing here is measured: dtsim has no BERT, and its studies take the per-GPU step time from the
published 1-GPU throughput (`compute.time.kind: "fixed"`); the profile supplies what the overlap
needs, namely the parameter tensors in Google BERT's variable-creation order (110.1 M elements, 206
tensors), the layers in execution order with the tensors each owns, and per-layer times that split
a step in proportion to the layers' FLOPs (backward = 2 x forward for every matrix multiply).
The MLM decoder's weight is the word-embedding table (tied, as in BERT): its gradient is complete
only when the embedding lookup's backward, the last of the step, has run, so the table (23.4 M
elements, 94 MB) belongs to the embedding layer. Non-matmul work (LayerNorm, GELU, softmax,
dropout) gets no time of its own; its share of a real step is spread over the matmuls.
"""
import json
import os
import sys

V, H, L, I, P, T = 30522, 768, 12, 3072, 512, 2    # vocab, hidden, layers, intermediate, positions, types
SEQ, MASKED = 128, 20
STEP_S = 32 / 107.33    # nominal step at batch 32 (any value: the studies rescale it with compute.time)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
        "traces", "profiles", "bert-base-seq128.profile.json")
    tensors = []

    def t(name, *shape):
        n = 1
        for d in shape:
            n *= d
        tensors.append({"name": name, "shape": list(shape), "elements": n})
        return len(tensors) - 1

    layers = []

    def layer(name, typ, idx, fwd):   # fwd: forward FLOPs per sequence
        layers.append({"name": name, "type": typ, "tensors": idx, "calls": 1, "forward_flops": float(fwd),
                       "backward_input_flops": float(fwd), "backward_weight_flops": float(fwd)})

    emb = [t("bert/embeddings/word_embeddings", V, H), t("bert/embeddings/token_type_embeddings", T, H),
           t("bert/embeddings/position_embeddings", P, H), t("bert/embeddings/LayerNorm/beta", H),
           t("bert/embeddings/LayerNorm/gamma", H)]
    layer("embeddings", "embedding", emb, 0)
    for i in range(L):
        p = f"bert/encoder/layer_{i}/"
        qkv = []
        for m in ("query", "key", "value"):
            qkv += [t(p + f"attention/self/{m}/kernel", H, H), t(p + f"attention/self/{m}/bias", H)]
        layer(f"layer_{i}.attention.self", "attention", qkv, 3 * 2 * SEQ * H * H + 2 * 2 * SEQ * SEQ * H)
        layer(f"layer_{i}.attention.output", "linear+layernorm",
              [t(p + "attention/output/dense/kernel", H, H), t(p + "attention/output/dense/bias", H),
               t(p + "attention/output/LayerNorm/beta", H), t(p + "attention/output/LayerNorm/gamma", H)],
              2 * SEQ * H * H)
        layer(f"layer_{i}.intermediate", "linear+gelu",
              [t(p + "intermediate/dense/kernel", H, I), t(p + "intermediate/dense/bias", I)], 2 * SEQ * H * I)
        layer(f"layer_{i}.output", "linear+layernorm",
              [t(p + "output/dense/kernel", I, H), t(p + "output/dense/bias", H),
               t(p + "output/LayerNorm/beta", H), t(p + "output/LayerNorm/gamma", H)], 2 * SEQ * I * H)
    layer("pooler", "linear", [t("bert/pooler/dense/kernel", H, H), t("bert/pooler/dense/bias", H)], 2 * H * H)
    layer("cls.predictions.transform", "linear+layernorm",
          [t("cls/predictions/transform/dense/kernel", H, H), t("cls/predictions/transform/dense/bias", H),
           t("cls/predictions/transform/LayerNorm/beta", H), t("cls/predictions/transform/LayerNorm/gamma", H)],
          2 * MASKED * H * H)
    layer("cls.predictions.decoder", "linear (weight tied to the word embeddings)",
          [t("cls/predictions/output_bias", V)], 2 * MASKED * H * V)
    layer("cls.seq_relationship", "linear",
          [t("cls/seq_relationship/output_weights", 2, H), t("cls/seq_relationship/output_bias", 2)], 2 * H * 2)

    total = sum(3 * l["forward_flops"] for l in layers)
    fsum = bsum = 0.0
    for l in layers:
        l["forward_s"] = [STEP_S * l["forward_flops"] / total]
        l["backward_s"] = [STEP_S * 2 * l["forward_flops"] / total]
        fsum += l["forward_s"][0]
        bsum += l["backward_s"][0]
    prof = {"format": "dtsim-model-profile/1", "name": "bert-base-seq128",
            "source": "bench/validation/bert_profile.py (shapes and FLOPs; times FLOP-proportional, not measured)",
            "framework": "none (synthetic)", "device": "synthetic", "device_name": "none", "threads": 0,
            "input": [SEQ], "input_dtype": "int64", "dtype": "float32",
            "num_params": sum(x["elements"] for x in tensors), "tensors": tensors, "batches": [32],
            "layers": layers, "step": {"forward_s": [fsum], "backward_s": [bsum], "update_s": [0.0]}}
    try:
        with open(out, "w") as f:
            json.dump(prof, f, indent=1)
            f.write("\n")
    except OSError as e:
        print(f"error: {out}: {e.strerror}", file=sys.stderr)
        sys.exit(2)
    print(f"{out}: {len(tensors)} tensors, {prof['num_params']} parameters, {len(layers)} layers, "
          f"{total / 1e9:.1f} GFLOP per sequence (forward + backward)")


if __name__ == "__main__":
    main()
