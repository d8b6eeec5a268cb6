"""XGBoost and LightGBM models through their scikit-learn wrappers and their boosters."""

from __future__ import annotations

from typing import Any

from . import BenignSample
from ._common import SEED, joblib_sample, pickle_sample


def _data() -> tuple[Any, Any]:
    import numpy as np

    rng = np.random.RandomState(SEED)
    X = rng.normal(size=(80, 4))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    return X, y


def _xgb_classifier() -> Any:
    import xgboost

    X, y = _data()
    return xgboost.XGBClassifier(n_estimators=3, max_depth=2, random_state=SEED).fit(X, y)


def _xgb_regressor() -> Any:
    import xgboost

    X, _ = _data()
    return xgboost.XGBRegressor(n_estimators=3, max_depth=2).fit(X, X[:, 0])


def _xgb_booster() -> Any:
    return _xgb_classifier().get_booster()


def _lgbm_classifier() -> Any:
    import lightgbm

    X, y = _data()
    return lightgbm.LGBMClassifier(n_estimators=3, num_leaves=4, min_child_samples=5,
                                   random_state=SEED, verbose=-1).fit(X, y)


def _lgbm_regressor() -> Any:
    import lightgbm

    X, _ = _data()
    return lightgbm.LGBMRegressor(n_estimators=3, num_leaves=4, min_child_samples=5,
                                  verbose=-1).fit(X, X[:, 0])


def _lgbm_booster() -> Any:
    return _lgbm_classifier().booster_


def samples() -> list[BenignSample]:
    xgb = ("xgboost", "sklearn")
    lgb = ("lightgbm", "sklearn")
    return [
        pickle_sample("xgboost_classifier_p5", _xgb_classifier, 5, xgb),
        pickle_sample("xgboost_classifier_p2", _xgb_classifier, 2, xgb),
        pickle_sample("xgboost_booster_p4", _xgb_booster, 4, xgb),
        joblib_sample("xgboost_regressor_joblib", _xgb_regressor, 3, xgb),
        pickle_sample("lightgbm_classifier_p5", _lgbm_classifier, 5, lgb),
        pickle_sample("lightgbm_classifier_p2", _lgbm_classifier, 2, lgb),
        pickle_sample("lightgbm_booster_p4", _lgbm_booster, 4, lgb),
        joblib_sample("lightgbm_regressor_joblib", _lgbm_regressor, 3, lgb),
    ]
