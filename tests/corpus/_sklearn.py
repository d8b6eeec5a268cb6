"""scikit-learn estimators fitted on tiny data, pickled and joblib-dumped."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from . import BenignSample
from ._common import SEED, joblib_sample, pickle_sample

REQ = ("sklearn",)


# Names of the estimators in _estimators() (kept static so importing the corpus imports no sklearn).
ESTIMATORS: tuple[str, ...] = (
    "logreg", "logreg_binary", "linreg", "ridge", "ridge_classifier", "lasso", "elasticnet",
    "sgd_classifier", "sgd_regressor", "perceptron", "poisson", "tweedie", "bayesian_ridge",
    "huber", "ransac", "svc_proba", "linear_svc", "svr", "one_class_svm", "decision_tree",
    "decision_tree_reg", "extra_tree", "random_forest", "random_forest_rs_object",
    "extra_trees_reg", "isolation_forest", "gradient_boosting", "gradient_boosting_binary",
    "gradient_boosting_reg", "hist_gradient_boosting", "hist_gradient_boosting_reg",
    "hist_gradient_boosting_categorical", "adaboost", "bagging", "voting", "stacking",
    "stacking_reg", "knn_kd_tree", "knn_ball_tree", "knn_brute", "knn_manhattan",
    "knn_minkowski_p3", "radius_neighbors", "nearest_neighbors", "kernel_density", "lof_novelty",
    "nearest_centroid", "nca", "kmeans", "minibatch_kmeans", "dbscan", "agglomerative", "birch",
    "mean_shift", "pca", "pca_whiten_random", "truncated_svd", "nmf", "fast_ica", "kernel_pca",
    "isomap", "gaussian_mixture", "bayesian_gaussian_mixture", "gaussian_nb", "lda", "qda",
    "gp_regressor", "gp_classifier", "isotonic", "calibrated_sigmoid", "calibrated_isotonic",
    "mlp_classifier", "mlp_regressor_lbfgs", "bernoulli_rbm", "one_vs_rest", "multi_output",
    "transformed_target", "select_k_best", "variance_threshold", "rfe", "dummy",
    "elliptic_envelope", "pls", "random_projection", "nystroem", "rbf_sampler", "grid_search",
    "grid_search_scoring", "grid_search_multimetric",
    "standard_scaler", "minmax_scaler", "robust_scaler", "polynomial", "kbins", "quantile",
    "power", "spline", "function_transformer_log1p", "label_encoder", "label_binarizer",
    "multilabel_binarizer", "ordinal_encoder", "target_encoder", "tfidf_linear_svc",
    "count_vectorizer", "hashing_vectorizer", "column_transformer_pipeline",
    "column_passthrough_pandas",
)


def _data() -> tuple[Any, Any, Any, Any]:
    """(X, y_class, y_binary, y_reg): 60 rows, 4 features, 3 classes."""
    import numpy as np

    rng = np.random.RandomState(SEED)
    y = np.repeat(np.arange(3), 20)
    X = rng.normal(size=(60, 4)) + y[:, None] * 1.5
    y_bin = (y > 0).astype(int)
    y_reg = X @ np.array([1.0, -2.0, 0.5, 0.0]) + rng.normal(scale=0.1, size=60)
    return X, y, y_bin, y_reg


def _frame() -> tuple[Any, Any]:
    import numpy as np
    import pandas as pd

    rng = np.random.RandomState(SEED)
    n = 40
    df = pd.DataFrame(
        {
            "age": rng.randint(18, 80, size=n).astype(float),
            "income": rng.lognormal(10, 1, size=n),
            "city": rng.choice(["paris", "oslo", "lima"], size=n),
            "plan": rng.choice(["free", "pro"], size=n),
        }
    )
    df.loc[::7, "age"] = np.nan
    y = (df["income"] > df["income"].median()).astype(int).to_numpy()
    return df, y


def _texts() -> tuple[list[str], Any]:
    import numpy as np

    docs = [
        "the cat sat on the mat",
        "dogs chase cats in the park",
        "stock markets fell sharply today",
        "investors sold shares and bonds",
        "the kitten played with a ball",
        "interest rates rose again",
    ] * 3
    return docs, np.array([0, 0, 1, 1, 0, 1] * 3)


def _fit(est: Any, kind: str = "class") -> Any:
    X, y, y_bin, y_reg = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "none":
            est.fit(X)
        else:
            est.fit(X, {"class": y, "binary": y_bin, "reg": y_reg}[kind])
    return est


def _fit_multi(est: Any) -> Any:
    import numpy as np

    X, _, _, y_reg = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, np.column_stack([y_reg, -y_reg]))
    return est


def _estimators() -> dict[str, Callable[[], Any]]:
    import numpy as np
    from sklearn import (
        calibration,
        cluster,
        covariance,
        cross_decomposition,
        decomposition,
        discriminant_analysis,
        dummy,
        ensemble,
        feature_selection,
        gaussian_process,
        kernel_approximation,
        linear_model,
        manifold,
        mixture,
        model_selection,
        multiclass,
        multioutput,
        naive_bayes,
        neighbors,
        neural_network,
        preprocessing,
        random_projection,
        svm,
        tree,
    )
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.gaussian_process import kernels

    S = SEED
    c: dict[str, Callable[[], Any]] = {
        # linear models
        "logreg": lambda: _fit(linear_model.LogisticRegression(max_iter=200)),
        "logreg_binary": lambda: _fit(linear_model.LogisticRegression(), "binary"),
        "linreg": lambda: _fit(linear_model.LinearRegression(), "reg"),
        "ridge": lambda: _fit(linear_model.Ridge(alpha=0.5), "reg"),
        "ridge_classifier": lambda: _fit(linear_model.RidgeClassifier()),
        "lasso": lambda: _fit(linear_model.Lasso(alpha=0.01), "reg"),
        "elasticnet": lambda: _fit(linear_model.ElasticNet(alpha=0.01), "reg"),
        "sgd_classifier": lambda: _fit(linear_model.SGDClassifier(random_state=S)),
        "sgd_regressor": lambda: _fit(linear_model.SGDRegressor(random_state=S), "reg"),
        "perceptron": lambda: _fit(linear_model.Perceptron(random_state=S)),
        "poisson": lambda: _fit(linear_model.PoissonRegressor(), "binary"),
        "tweedie": lambda: _fit(linear_model.TweedieRegressor(power=1.5), "binary"),
        "bayesian_ridge": lambda: _fit(linear_model.BayesianRidge(), "reg"),
        "huber": lambda: _fit(linear_model.HuberRegressor(), "reg"),
        "ransac": lambda: _fit(linear_model.RANSACRegressor(random_state=S), "reg"),
        # SVMs
        "svc_proba": lambda: _fit(svm.SVC(probability=True, random_state=S)),
        "linear_svc": lambda: _fit(svm.LinearSVC(random_state=S)),
        "svr": lambda: _fit(svm.SVR(), "reg"),
        "one_class_svm": lambda: _fit(svm.OneClassSVM(gamma="auto"), "none"),
        # trees and forests
        "decision_tree": lambda: _fit(tree.DecisionTreeClassifier(max_depth=3, random_state=S)),
        "decision_tree_reg": lambda: _fit(
            tree.DecisionTreeRegressor(max_depth=3, random_state=S), "reg"
        ),
        "extra_tree": lambda: _fit(tree.ExtraTreeClassifier(random_state=S)),
        "random_forest": lambda: _fit(
            ensemble.RandomForestClassifier(n_estimators=3, max_depth=3, random_state=S)
        ),
        "random_forest_rs_object": lambda: _fit(
            ensemble.RandomForestClassifier(n_estimators=2, random_state=np.random.RandomState(S))
        ),
        "extra_trees_reg": lambda: _fit(
            ensemble.ExtraTreesRegressor(n_estimators=3, random_state=S), "reg"
        ),
        "isolation_forest": lambda: _fit(
            ensemble.IsolationForest(n_estimators=5, random_state=S), "none"
        ),
        "gradient_boosting": lambda: _fit(
            ensemble.GradientBoostingClassifier(n_estimators=5, random_state=S)
        ),
        "gradient_boosting_binary": lambda: _fit(
            ensemble.GradientBoostingClassifier(n_estimators=5, random_state=S), "binary"
        ),
        "gradient_boosting_reg": lambda: _fit(
            ensemble.GradientBoostingRegressor(n_estimators=5, loss="huber", random_state=S), "reg"
        ),
        "hist_gradient_boosting": lambda: _fit(
            ensemble.HistGradientBoostingClassifier(max_iter=5, random_state=S)
        ),
        "hist_gradient_boosting_reg": lambda: _fit(
            ensemble.HistGradientBoostingRegressor(max_iter=5, loss="poisson", random_state=S),
            "binary",
        ),
        "hist_gradient_boosting_categorical": _hgb_categorical,
        "adaboost": lambda: _fit(ensemble.AdaBoostClassifier(n_estimators=5, random_state=S)),
        "bagging": lambda: _fit(ensemble.BaggingClassifier(n_estimators=3, random_state=S)),
        "voting": lambda: _fit(
            ensemble.VotingClassifier(
                [("lr", linear_model.LogisticRegression()), ("nb", naive_bayes.GaussianNB()),
                 ("dt", tree.DecisionTreeClassifier(max_depth=2))],
                voting="soft",
            )
        ),
        "stacking": lambda: _fit(
            ensemble.StackingClassifier(
                [("svc", svm.LinearSVC()), ("knn", neighbors.KNeighborsClassifier(3))],
                final_estimator=linear_model.LogisticRegression(),
                cv=2,
            )
        ),
        "stacking_reg": lambda: _fit(
            ensemble.StackingRegressor(
                [("ridge", linear_model.Ridge()),
                 ("tree", tree.DecisionTreeRegressor(random_state=S))],
                cv=2,
            ),
            "reg",
        ),
        # neighbours
        "knn_kd_tree": lambda: _fit(neighbors.KNeighborsClassifier(3, algorithm="kd_tree")),
        "knn_ball_tree": lambda: _fit(neighbors.KNeighborsClassifier(3, algorithm="ball_tree")),
        "knn_brute": lambda: _fit(neighbors.KNeighborsRegressor(3, algorithm="brute"), "reg"),
        "knn_manhattan": lambda: _fit(
            neighbors.KNeighborsClassifier(3, algorithm="ball_tree", metric="manhattan")
        ),
        "knn_minkowski_p3": lambda: _fit(
            neighbors.KNeighborsClassifier(3, algorithm="kd_tree", p=3)
        ),
        "radius_neighbors": lambda: _fit(neighbors.RadiusNeighborsRegressor(2.0), "reg"),
        "nearest_neighbors": lambda: _fit(neighbors.NearestNeighbors(n_neighbors=2), "none"),
        "kernel_density": lambda: _fit(neighbors.KernelDensity(bandwidth=0.5), "none"),
        "lof_novelty": lambda: _fit(neighbors.LocalOutlierFactor(novelty=True), "none"),
        "nearest_centroid": lambda: _fit(neighbors.NearestCentroid()),
        "nca": lambda: _fit(
            neighbors.NeighborhoodComponentsAnalysis(n_components=2, max_iter=5, random_state=S)
        ),
        # clustering
        "kmeans": lambda: _fit(cluster.KMeans(3, n_init=2, random_state=S), "none"),
        "minibatch_kmeans": lambda: _fit(
            cluster.MiniBatchKMeans(3, n_init=2, random_state=S), "none"
        ),
        "dbscan": lambda: _fit(cluster.DBSCAN(eps=1.0), "none"),
        "agglomerative": lambda: _fit(cluster.AgglomerativeClustering(3), "none"),
        "birch": lambda: _fit(cluster.Birch(n_clusters=3), "none"),
        "mean_shift": lambda: _fit(cluster.MeanShift(bandwidth=2.0), "none"),
        # decomposition and manifold
        "pca": lambda: _fit(decomposition.PCA(2), "none"),
        "pca_whiten_random": lambda: _fit(
            decomposition.PCA(2, whiten=True, svd_solver="randomized", random_state=S), "none"
        ),
        "truncated_svd": lambda: _fit(decomposition.TruncatedSVD(2, random_state=S), "none"),
        "nmf": _nmf,
        "fast_ica": lambda: _fit(decomposition.FastICA(2, random_state=S), "none"),
        "kernel_pca": lambda: _fit(decomposition.KernelPCA(2, kernel="rbf"), "none"),
        "isomap": lambda: _fit(manifold.Isomap(n_neighbors=5, n_components=2), "none"),
        # mixtures, Bayes, discriminants, Gaussian processes, calibration
        "gaussian_mixture": lambda: _fit(mixture.GaussianMixture(2, random_state=S), "none"),
        "bayesian_gaussian_mixture": lambda: _fit(
            mixture.BayesianGaussianMixture(n_components=2, random_state=S), "none"
        ),
        "gaussian_nb": lambda: _fit(naive_bayes.GaussianNB()),
        "lda": lambda: _fit(discriminant_analysis.LinearDiscriminantAnalysis()),
        "qda": lambda: _fit(discriminant_analysis.QuadraticDiscriminantAnalysis()),
        "gp_regressor": lambda: _fit(
            gaussian_process.GaussianProcessRegressor(
                kernels.ConstantKernel() * kernels.RBF() + kernels.WhiteKernel(), random_state=S
            ),
            "reg",
        ),
        "gp_classifier": lambda: _fit(
            gaussian_process.GaussianProcessClassifier(kernels.Matern(nu=1.5), random_state=S),
            "binary",
        ),
        "isotonic": _isotonic,
        "calibrated_sigmoid": lambda: _fit(
            calibration.CalibratedClassifierCV(svm.LinearSVC(), method="sigmoid", cv=2)
        ),
        "calibrated_isotonic": lambda: _fit(
            calibration.CalibratedClassifierCV(naive_bayes.GaussianNB(), method="isotonic", cv=2)
        ),
        # neural networks
        "mlp_classifier": lambda: _fit(
            neural_network.MLPClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=S)
        ),
        "mlp_regressor_lbfgs": lambda: _fit(
            neural_network.MLPRegressor(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=30,
                                        random_state=S),
            "reg",
        ),
        "bernoulli_rbm": lambda: _fit(
            neural_network.BernoulliRBM(n_components=2, n_iter=2, random_state=S), "none"
        ),
        # meta-estimators, selection, misc
        "one_vs_rest": lambda: _fit(multiclass.OneVsRestClassifier(svm.LinearSVC())),
        "multi_output": lambda: _fit_multi(multioutput.MultiOutputRegressor(linear_model.Ridge())),
        "transformed_target": lambda: _fit(
            TransformedTargetRegressor(linear_model.LinearRegression(), func=np.log1p,
                                       inverse_func=np.expm1),
            "binary",
        ),
        "select_k_best": lambda: _fit(feature_selection.SelectKBest(feature_selection.f_classif,
                                                                    k=2)),
        "variance_threshold": lambda: _fit(feature_selection.VarianceThreshold(), "none"),
        "rfe": lambda: _fit(
            feature_selection.RFE(linear_model.LogisticRegression(), n_features_to_select=2)
        ),
        "dummy": lambda: _fit(dummy.DummyClassifier(strategy="prior")),
        "elliptic_envelope": lambda: _fit(covariance.EllipticEnvelope(random_state=S), "none"),
        "pls": lambda: _fit(cross_decomposition.PLSRegression(2), "reg"),
        "random_projection": lambda: _fit(
            random_projection.GaussianRandomProjection(2, random_state=S), "none"
        ),
        "nystroem": lambda: _fit(kernel_approximation.Nystroem(n_components=5, random_state=S),
                                 "none"),
        "rbf_sampler": lambda: _fit(kernel_approximation.RBFSampler(n_components=5,
                                                                    random_state=S), "none"),
        "grid_search": lambda: _fit(
            model_selection.GridSearchCV(linear_model.LogisticRegression(), {"C": [0.1, 1.0]},
                                         cv=2)
        ),
        "grid_search_scoring": lambda: _fit(
            model_selection.GridSearchCV(linear_model.LogisticRegression(), {"C": [0.1, 1.0]},
                                         scoring="accuracy", cv=2)
        ),
        "grid_search_multimetric": lambda: _fit(
            model_selection.GridSearchCV(linear_model.LogisticRegression(), {"C": [0.1, 1.0]},
                                         scoring=["accuracy", "f1_macro", "roc_auc_ovr"],
                                         refit="accuracy", cv=2)
        ),
        # preprocessing
        "standard_scaler": lambda: _fit(preprocessing.StandardScaler(), "none"),
        "minmax_scaler": lambda: _fit(preprocessing.MinMaxScaler(), "none"),
        "robust_scaler": lambda: _fit(preprocessing.RobustScaler(), "none"),
        "polynomial": lambda: _fit(preprocessing.PolynomialFeatures(2), "none"),
        "kbins": lambda: _fit(
            preprocessing.KBinsDiscretizer(
                3, encode="ordinal", quantile_method="averaged_inverted_cdf"
            ),
            "none",
        ),
        "quantile": lambda: _fit(preprocessing.QuantileTransformer(n_quantiles=10), "none"),
        "power": lambda: _fit(preprocessing.PowerTransformer(), "none"),
        "spline": lambda: _fit(preprocessing.SplineTransformer(n_knots=3), "none"),
        "function_transformer_log1p": lambda: _fit(
            preprocessing.FunctionTransformer(np.log1p, inverse_func=np.expm1), "none"
        ),
        "label_encoder": _label_encoder,
        "label_binarizer": _label_binarizer,
        "multilabel_binarizer": _multilabel_binarizer,
        "ordinal_encoder": _ordinal_encoder,
        "target_encoder": _target_encoder,
        # text and mixed-type pipelines
        "tfidf_linear_svc": _tfidf_pipeline,
        "count_vectorizer": _count_vectorizer,
        "hashing_vectorizer": _hashing_vectorizer,
        "column_transformer_pipeline": _column_pipeline,
    }
    return c


def _nmf() -> Any:
    import numpy as np
    from sklearn.decomposition import NMF

    X = np.abs(_data()[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return NMF(2, init="nndsvda", max_iter=50, random_state=SEED).fit(X)


def _isotonic() -> Any:
    from sklearn.isotonic import IsotonicRegression

    X, _, _, y_reg = _data()
    return IsotonicRegression(out_of_bounds="clip").fit(X[:, 0], y_reg)


def _hgb_categorical() -> Any:
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, y, _, _ = _data()
    X = X.copy()
    X[:, 3] = np.arange(len(X)) % 4
    return HistGradientBoostingClassifier(
        max_iter=5, categorical_features=[3], random_state=SEED
    ).fit(X, y)


def _label_encoder() -> Any:
    from sklearn.preprocessing import LabelEncoder

    return LabelEncoder().fit(["paris", "oslo", "lima", "paris"])


def _label_binarizer() -> Any:
    from sklearn.preprocessing import LabelBinarizer

    return LabelBinarizer().fit(["a", "b", "c"])


def _multilabel_binarizer() -> Any:
    from sklearn.preprocessing import MultiLabelBinarizer

    return MultiLabelBinarizer().fit([{"x", "y"}, {"z"}])


def _ordinal_encoder() -> Any:
    from sklearn.preprocessing import OrdinalEncoder

    df, _ = _frame()
    return OrdinalEncoder().fit(df[["city", "plan"]])


def _target_encoder() -> Any:
    from sklearn.preprocessing import TargetEncoder

    df, y = _frame()
    return TargetEncoder(random_state=SEED, cv=2).fit(df[["city", "plan"]], y)


def _tfidf_pipeline() -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import Pipeline
    from sklearn.svm import LinearSVC

    docs, y = _texts()
    return Pipeline(
        [("tfidf", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)), ("svc", LinearSVC())]
    ).fit(docs, y)


def _count_vectorizer() -> Any:
    from sklearn.feature_extraction.text import CountVectorizer

    return CountVectorizer(stop_words="english", min_df=1).fit(_texts()[0])


def _hashing_vectorizer() -> Any:
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
    from sklearn.pipeline import make_pipeline

    return make_pipeline(HashingVectorizer(n_features=64), TfidfTransformer()).fit(_texts()[0])


def _column_pipeline() -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    df, y = _frame()
    numeric = Pipeline(
        [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
    )
    pre = ColumnTransformer(
        [
            ("num", numeric, ["age", "income"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["city", "plan"]),
        ],
        remainder="drop",
    )
    return Pipeline([("pre", pre), ("clf", LogisticRegression())]).fit(df, y)


def _column_pipeline_passthrough() -> Any:
    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import KNNImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    df, y = _frame()
    pre = make_column_transformer(
        (OneHotEncoder(sparse_output=False), ["city", "plan"]),
        (KNNImputer(n_neighbors=2), ["age"]),
        remainder="passthrough",
    ).set_output(transform="pandas")
    return make_pipeline(pre, RandomForestClassifier(n_estimators=2, random_state=SEED)).fit(df, y)


_FITTED: dict[str, Any] = {}
_PANDAS_INPUT = {"ordinal_encoder", "target_encoder", "column_transformer_pipeline",
                 "column_passthrough_pandas"}


def _fitted(name: str) -> Callable[[], Any]:
    """A maker returning estimator ``name``, fitted once per process (sklearn imported lazily)."""

    def get() -> Any:
        if name not in _FITTED:
            catalogue = _estimators()
            catalogue["column_passthrough_pandas"] = _column_pipeline_passthrough
            missing = set(ESTIMATORS) ^ set(catalogue)
            if missing:
                raise RuntimeError(f"ESTIMATORS and _estimators() disagree: {sorted(missing)}")
            _FITTED[name] = catalogue[name]()
        return _FITTED[name]

    return get


def _needs(name: str) -> tuple[str, ...]:
    return REQ + (("pandas",) if name in _PANDAS_INPUT else ())


def samples() -> list[BenignSample]:
    out: list[BenignSample] = []
    for name in ESTIMATORS:
        out.append(pickle_sample(f"sklearn_{name}", _fitted(name), 5, _needs(name)))
    # Every pickle protocol on a few representative models.
    for proto in range(5):
        for name in ("column_transformer_pipeline", "random_forest", "hist_gradient_boosting",
                     "knn_kd_tree", "gradient_boosting", "tfidf_linear_svc"):
            out.append(pickle_sample(f"sklearn_{name}_p{proto}", _fitted(name), proto,
                                     _needs(name)))
    # joblib.dump with every compressor.
    compressors: dict[str, Any] = {
        "raw": 0,
        "c3": 3,
        "zlib": ("zlib", 3),
        "gzip": ("gzip", 3),
        "bz2": ("bz2", 3),
        "lzma": ("lzma", 3),
        "xz": ("xz", 3),
    }
    for cname, compress in compressors.items():
        for name in ("column_transformer_pipeline", "knn_ball_tree", "random_forest",
                     "hist_gradient_boosting"):
            out.append(joblib_sample(f"sklearn_joblib_{name}_{cname}", _fitted(name), compress,
                                     _needs(name)))
    for name in ("mlp_classifier", "gaussian_mixture", "svc_proba", "kmeans", "pca", "nmf",
                 "isolation_forest", "calibrated_isotonic", "stacking", "gp_regressor",
                 "column_passthrough_pandas", "label_encoder"):
        out.append(joblib_sample(f"sklearn_joblib_{name}", _fitted(name), 3, _needs(name)))
    out.append(joblib_sample("sklearn_joblib_protocol2", _fitted("random_forest"), 0, REQ,
                             protocol=2))
    return out
