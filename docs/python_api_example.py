# %% [markdown]
# # 노트북에서 쓰는 forecaster: CDNOW 예제 (Python API worked example)
#
# 번들 CDNOW 전체 데이터(표본 추출 없음)로 불러오기 → 평가 → 학습 → 예측 → 설명을 차례로 합니다.
# 명령줄(`forecaster ...`)이 부르는 것과 같은 함수이므로 숫자도 같습니다.
#
# Load → evaluate → train → predict → explain on the bundled CDNOW data, in full. These are
# the functions the `forecaster` command line calls, so the figures are the CLI's.
# Run it as a script (`python docs/python_api_example.py [OUTPUT_FOLDER]`) or open it as a
# notebook (VS Code, or `jupytext --to ipynb`). Figure lines have fixed labels and formats
# (e.g. `RPS xgb_base 0.034377`) so that tests/test_python_api_example.py can read them.
#
# 진행 상황과 안내(`참고: …`)는 stderr로 나옵니다. 끄려면 `fc.set_progress(None)`,
# 한 블록만 바꾸려면 `with fc.progress_hook(my_hook): ...` (docs/python-api.md).
# Progress and notices go to stderr; `fc.set_progress(None)` silences them.

# %%
import sys
import tempfile
from pathlib import Path

import forecaster as fc

# Inside a notebook kernel sys.argv holds the kernel's own arguments, not an output folder.
arguments = [] if "ipykernel" in sys.modules else sys.argv[1:]
out = Path(arguments[0]) if arguments else Path(tempfile.mkdtemp(prefix="forecaster-example-"))
print(f"output folder: {out}")

# %% [markdown]
# ## 1. 데이터 불러오기 (load)
#
# `fc.load_dataset("cdnow")`는 `forecaster data`와 같은 검사·정리를 거친 `Dataset`을 돌려줍니다.
# `summary()`는 `forecaster data`가 출력하는 표입니다 (금액은 미국 달러).
# `summary()` is the table `forecaster data` prints; CDNOW amounts are US dollars.

# %%
cdnow = fc.load_dataset("cdnow")
print(cdnow.summary().to_string(index=False))

# %% [markdown]
# ## 2. 한 고객의 서술 (narrative)
#
# LLM 예측기에 보내는 한국어 서술 그대로입니다 (아무것도 보내지 않습니다).
# The Korean text an LLM forecaster would be sent, exactly; nothing is sent.

# %%
print(fc.narrate(cdnow, "00145", "1998-01"))

# %% [markdown]
# ## 3. 시점 밖 평가 (out-of-time evaluation)
#
# 기본값: 결과를 아는 마지막 3개월(1998-04..06)을 평가 월로, 예측기는 `"empirical"`입니다.
# 이 경험적 예측기는 **LLM이 아닌** 통계 규칙이므로, 아래 `forecaster` 비교군의 숫자는 LLM의 성능이
# 아닙니다. Defaults: test months 1998-04..06, the `"empirical"` forecaster, which is NOT an
# LLM: the `forecaster` arms below measure a statistical rule, not a language model.
# 풀링한(pooled) RPS·로그 손실·PR-AUC를 비교군별로 봅니다 (RPS·로그 손실은 낮을수록 좋음).

# %%
ev = fc.evaluate(cdnow)
pooled = ev.metrics.query("anchor == 'pooled' and metric in ('rps', 'log_loss', 'pr_auc')")
for arm, metric, value in pooled[["arm", "metric", "value"]].itertuples(index=False):
    print(f"{metric.upper()} {arm} {value:.6f}")

# %% [markdown]
# 핵심 비교: `xgb_base+forecaster − xgb_base`의 RPS 차이와 고객 단위 paired bootstrap 95% 구간,
# 그리고 이 평가 행으로 검출할 수 있는 가장 작은 차이(MDE). 음수면 예측기 특성이 RPS를 개선한 것입니다.
# The headline: the RPS difference with its 95% interval and the smallest detectable difference
# (negative = the forecaster's features help).

# %%
headline = ev.differences.set_index(["comparison", "anchor", "metric"]).loc[
    ("xgb_base+forecaster - xgb_base", "pooled", "rps")]
print("xgb_base+forecaster - xgb_base, pooled RPS:")
print(f"RPS_DIFF {headline['diff']:+.7f}")
print(f"RPS_DIFF_LO {headline['lo']:+.7f}")
print(f"RPS_DIFF_HI {headline['hi']:+.7f}")
print(f"RPS_DIFF_MDE {headline['mde']:.7f}")
print("\n".join(ev.headline))

# %% [markdown]
# 보고서 폴더 (report.html, report.md, metrics.json, predictions.parquet, plots/) 쓰기.
# 노트북에서는 `ev`를 셀 마지막에 두면 요약 표가, `ev.plots["gains"]`는 그림이 보입니다.
# Write the report folder; in a notebook `ev` shows its headline and table, `ev.plots[...]` a figure.

# %%
written = ev.write_report(out / "report")
print("report:", ", ".join(sorted(path.name for path in written.values())))

# %% [markdown]
# ## 4. 학습, 저장, 불러오기 (train, save, load)
#
# 결과를 아는 모든 달로 학습하고 마지막 달(1998-06)로 검증합니다 (조기 종료, 임계값).
# `summary_`는 비교군별 검증 지표입니다. Fitted on every month with an outcome, validated on
# the last; `summary_` holds the validation figures per arm.

# %%
model = fc.train(cdnow)
for arm, figures in model.summary_.items():
    print(f"VALIDATION_RPS {arm} {figures['validation_rps']:.6f}")
    print(f"VALIDATION_PR_AUC {arm} {figures['validation_pr_auc']:.6f}")

# %%
model.save(out / "model")  # the same folder `forecaster train --out` writes (XGBoost JSON, no pickle)
model = fc.TrainedModel.load(out / "model")
print(f"TRAINED_ANCHORS {'..'.join(model.config_['trained_anchors'])}")
print(f"VALIDATION_ANCHOR {model.config_['validation_anchor']}")

# %% [markdown]
# ## 5. 전체 고객 예측 (predict)
#
# `forecaster batch`와 같은 열·행의 DataFrame입니다. 기본 기준 월은 데이터가 끝난 다음 달(1998-07).
# The frame `forecaster batch` writes; the default anchor is the month after the data ends.

# %%
rows = model.predict(cdnow)
print(f"PREDICT_ANCHOR {rows['anchor'].iloc[0]}")
for status, count in rows["status"].value_counts().items():
    print(f"STATUS {status} {count}")
print(f"TOP20_FLAGS {int(rows['top20_target'].sum())}")
print(f"MEAN_PURCHASE_PROB {rows['purchase_prob'].mean():.6f}")
print(f"SUM_EXPECTED_SPEND {rows['expected_spend'].sum():.2f}")

# %% [markdown]
# ## 6. 한 고객 설명 (explain)
#
# `forecaster explain`과 같은 근거: 서술, 예측기의 답, 두 모델, SHAP 기여도, 실제 결과.
# `.to_dict()`는 `explain --format json`과 같은 객체입니다. The same evidence as
# `forecaster explain`; `.to_dict()` is its `--format json` object.

# %%
explanation = model.explain(cdnow, "00145", "1998-06")
print(explanation.text)
figures = explanation.to_dict()
print(f"PURCHASE_PROBABILITY {figures['purchase_probability']:.6f}")
print(f"THRESHOLD {figures['threshold']:.6f}")
print(f"DECISION {figures['decision']}")
print(f"TOP20 {figures['top20']}")
