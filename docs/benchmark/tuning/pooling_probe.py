"""Linear probe on frozen MiniLM features: 3 or 6 layers, raw or unit-length mean pooling.

Per label a class-balanced logistic regression (C=10) on the mean-pooled
last hidden states of 1,200 source texts, scored on 500 texts of the
target's official validation split (the scale_quantile probe's sampling,
seed 0), for news -> direct and direct -> news::

    OMP_NUM_THREADS=1 python docs/benchmark/tuning/pooling_probe.py
"""
import sys, time, numpy as np, torch
torch.set_num_threads(1)
from sklearn.linear_model import LogisticRegression
from transformers import AutoModel, AutoTokenizer
from sklearn_dallmi.benchmark.adaptation import DOMAINS, Config, _subsample, truncated_encoder
from sklearn_dallmi.datasets import load_disaster_messages, hide_positives
from sklearn_dallmi.metrics import macro_average_precision
from sklearn_dallmi.models import default_model_path

def embed(path, texts, normalize):
    tok = AutoTokenizer.from_pretrained(path); m = AutoModel.from_pretrained(path).eval()
    out = []
    order = np.argsort([-len(t) for t in texts])
    with torch.inference_mode():
        for i in range(0, len(texts), 64):
            rows = order[i:i+64]
            enc = tok([texts[j] for j in rows], truncation=True, max_length=64, padding=True, return_tensors="pt")
            h = m(**enc).last_hidden_state; mask = enc["attention_mask"].unsqueeze(-1).float()
            v = (h*mask).sum(1)/mask.sum(1)
            if normalize: v = torch.nn.functional.normalize(v, dim=-1)
            out.append((rows, v.numpy()))
    E = np.zeros((len(texts), out[0][1].shape[1]), dtype=np.float32)
    for rows, v in out: E[rows] = v
    return E

data = load_disaster_messages(); config = Config.full(); seed = 0
for source, target in [("news", "direct"), ("direct", "news")]:
    src = _subsample(np.random.default_rng([seed, DOMAINS.index(source)]), (data.genre == source) & (data.split != "test"), config.n_source)
    rng = np.random.default_rng([seed, 7])
    tgt = _subsample(rng, (data.genre == target) & (data.split == "train"), config.n_target)
    val = _subsample(rng, (data.genre == target) & (data.split == "validation"), config.n_test)
    for layers in (3, 6):
        path = default_model_path() if layers == 6 else truncated_encoder(3, "benchmark_results/cache")
        for normalize in (False, True):
            t = time.time()
            Es = embed(path, data.texts[src].tolist(), normalize); Ev = embed(path, data.texts[val].tolist(), normalize)
            Ys, Yv = data.Y[src], data.Y[val]
            P = np.zeros(Yv.shape)
            for l in range(Ys.shape[1]):
                if 0 < Ys[:, l].sum() < len(Ys):
                    P[:, l] = LogisticRegression(C=10, class_weight="balanced", max_iter=2000).fit(Es, Ys[:, l]).predict_proba(Ev)[:, 1]
            labels = Yv.any(0)
            print(f"{source}->{target} layers={layers} normalize={normalize} source-only LR val macroAP {macro_average_precision(Yv[:, labels], P[:, labels]):.3f} ({time.time()-t:.0f}s)", flush=True)
