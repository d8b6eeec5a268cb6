"""TensorFlow SavedModel (``saved_model.pb``) and frozen graphs (a bare GraphDef ``.pb``).

The ops a graph uses are what it can do when it runs: most are math, a few touch files or call
back into Python. They are read from the protobuf wire format directly, so no TensorFlow is
needed and nothing is run.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from mlward.formats import protobuf

# Ops that call Python: arbitrary code when the graph runs.
PYTHON_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})
# Ops that read, list, write or delete files, or send data out, when the graph runs. The
# checkpoint ops every SavedModel carries (SaveV2, RestoreV2, MergeV2Checkpoints,
# ShardedFilename) are not listed: they touch the model's own variables folder.
FILE_OPS = frozenset(
    {
        "ReadFile",
        "WriteFile",
        "MatchingFiles",
        "DeleteFile",
        "ImmutableConst",
        "WholeFileReader",
        "WholeFileReaderV2",
        "TextLineReader",
        "TextLineReaderV2",
        "FixedLengthRecordReader",
        "FixedLengthRecordReaderV2",
        "TFRecordReader",
        "TFRecordReaderV2",
        "IdentityReader",
        "IdentityReaderV2",
        "LMDBReader",
        "ReaderReadV2",
        "ReaderRead",
        "ReaderReadUpToV2",
        "DatasetToTFRecord",
        "ExperimentalDatasetToTFRecord",
        "SaveDatasetV2",
        "SnapshotDatasetV2",
        "CreateSummaryFileWriter",
        "CreateSummaryDbWriter",
        "WriteFileSummary",
        "PrintV2",
        "Print",
        "DebugIdentityV2",
        "DebugIdentityV3",
        "LoadAndRemapMatrix",
        "TextLineDataset",
        "TFRecordDataset",
        "FixedLengthRecordDataset",
        "FixedLengthRecordDatasetV2",
        "MakeIterator",
        "RecordInput",
    }
)


# Ops reviewed as pure computation, state or control flow (the bulk of real graphs); any other
# op is listed as unknown, for a person to look at.
KNOWN_OPS = frozenset(
    """
    Abs Acos Acosh Add AddN AddV2 All Any ApproximateEqual ArgMax ArgMin Asin Asinh Assert
    Assign AssignAdd AssignSub AssignVariableOp Atan Atan2 Atanh AvgPool AvgPool3D
    BatchMatMul BatchMatMulV2 BatchMatMulV3 BatchNormWithGlobalNormalization BatchToSpaceND
    BiasAdd BiasAddV1 Bitcast BroadcastArgs BroadcastTo Bucketize Cast Ceil CheckNumerics
    CheckNumericsV2 Cholesky ClipByValue Complex ComplexAbs Concat ConcatV2 Const
    ControlTrigger Conv2D Conv2DBackpropInput Conv3D Conv3DBackpropInputV2 Cos Cosh Cumprod
    Cumsum DepthToSpace DepthwiseConv2dNative DepthwiseConv2dNativeBackpropInput Dequantize
    DisableCopyOnRead Div DivNoNan Einsum Elu Empty EnsureShape Enter Equal Erf Erfc Exit Exp
    ExpandDims Expm1 ExtractImagePatches FakeQuantWithMinMaxArgs FakeQuantWithMinMaxVars Fill
    Floor FloorDiv FloorMod FusedBatchNorm FusedBatchNormV2 FusedBatchNormV3 Gather GatherNd
    GatherV2 Greater GreaterEqual HashTableV2 Identity IdentityN If Imag InTopKV2
    InitializeTableV2 InvertPermutation IsFinite IsInf IsNan IsVariableInitialized L2Loss
    LeakyRelu Less LessEqual Lgamma LinSpace ListDiff Log Log1p LogSoftmax LogicalAnd
    LogicalNot LogicalOr LookupTableFindV2 LookupTableImportV2 LookupTableSizeV2 LoopCond LRN
    MatMul MatrixBandPart MatrixDiag MatrixDiagV3 MatrixInverse MatrixSetDiag MatrixSetDiagV3
    Max MaxPool MaxPool3D MaxPoolV2 Maximum Mean Merge Min Minimum MirrorPad Mod Mul MulNoNan
    Multinomial Neg NextIteration NoOp NonMaxSuppressionV3 NonMaxSuppressionV4
    NonMaxSuppressionV5 NotEqual OneHot OnesLike Pack Pad PadV2 PartitionedCall Placeholder
    PlaceholderWithDefault Pow Prod QuantizeV2 RandomStandardNormal RandomUniform
    RandomUniformInt Range Rank ReadVariableOp Real RealDiv Reciprocal Relu Relu6 Reshape
    ResizeBilinear ResizeNearestNeighbor ResourceGather RestoreV2 Reverse ReverseV2 Rint Round
    Rsqrt SaveV2 ScatterNd Select SelectV2 Selu Shape ShapeN ShardedFilename Sigmoid Sign Sin
    Sinh Size Slice Snapshot Softmax Softplus Softsign SpaceToBatchND SpaceToDepth
    SparseToDense Split SplitV Sqrt Square SquaredDifference Squeeze StatefulPartitionedCall
    StatelessIf StatelessRandomNormal StatelessRandomUniform StatelessWhile StaticRegexFullMatch
    StopGradient StridedSlice StringJoin Sub Sum Switch Tan Tanh TensorArrayGatherV3
    TensorArrayReadV3 TensorArrayScatterV3 TensorArraySizeV3 TensorArrayV3 TensorArrayWriteV3
    TensorListFromTensor TensorListGetItem TensorListReserve TensorListSetItem TensorListStack
    Tile TopKV2 Transpose TruncateDiv TruncatedNormal Unique Unpack UnsortedSegmentSum
    VarHandleOp VarIsInitializedOp Variable VariableV2 Where While Xdivy Xlog1py ZerosLike
    MergeV2Checkpoints Erfinv SaveSlices RestoreSlice Restore Save
    """.split()  # noqa: SIM905 - a word list reads better than 200 quoted strings
)


@dataclass
class Graph:
    ops: dict[str, int] = field(default_factory=dict)
    nodes: int = 0


def _graph_def(data: bytes, graph: Graph) -> None:
    for node in protobuf.messages(data, 1):  # GraphDef.node
        _node(node, graph)
    for library in protobuf.messages(data, 2):  # GraphDef.library
        for function in protobuf.messages(library, 1):  # FunctionDefLibrary.function
            for node in protobuf.messages(function, 3):  # FunctionDef.node_def
                _node(node, graph)


def _node(data: bytes, graph: Graph) -> None:
    op = protobuf.string(data, 2)  # NodeDef.op
    if op:
        graph.nodes += 1
        graph.ops[op] = graph.ops.get(op, 0) + 1


def read_saved_model(data: bytes) -> Graph:
    graph = Graph()
    for meta_graph in protobuf.messages(data, 2):  # SavedModel.meta_graphs
        for graph_def in protobuf.messages(meta_graph, 2):  # MetaGraphDef.graph_def
            _graph_def(graph_def, graph)
    return graph


def read_graph_def(data: bytes) -> Graph:
    graph = Graph()
    _graph_def(data, graph)
    return graph


# The last 8 bytes of a TensorFlow checkpoint index (an SSTable), little-endian.
CHECKPOINT_INDEX_MAGIC = bytes.fromhex("57fb808b247547db")
_DATA_SHARD = re.compile(r"\.data-\d{5}-of-\d{5}$")


def is_checkpoint_index(tail: bytes) -> bool:
    return tail.endswith(CHECKPOINT_INDEX_MAGIC)


def is_checkpoint_shard(path: str) -> bool:
    """A variables.data-NNNNN-of-NNNNN file beside its index: raw tensor bytes, which the index
    describes and TensorFlow only ever copies into tensors (the bytes themselves have no marker)."""
    match = _DATA_SHARD.search(path)
    return match is not None and os.path.isfile(path[: match.start()] + ".index")


def is_fingerprint(data: bytes) -> bool:
    """fingerprint.pb: five 64-bit hashes (varints 1-5), a version message (6) and a UUID (7)."""
    if not data or len(data) > 4096:
        return False
    try:
        seen = [(number, kind) for number, kind, _ in protobuf.fields(data)]
    except protobuf.ProtobufError:
        return False
    return (
        bool(seen)
        and all(
            (kind == protobuf.VARINT and 1 <= number <= 5)
            or (number in (6, 7) and kind == protobuf.LENGTH)
            for number, kind in seen
        )
        and any(number == 1 for number, _ in seen)
    )


def looks_like_saved_model(data: bytes) -> bool:
    """SavedModel: field 1 (schema version, varint) then meta_graphs, or meta_graphs alone."""
    try:
        for number, kind, value in protobuf.fields(data):
            if number == 1 and kind == protobuf.VARINT and isinstance(value, int) and value < 10:
                continue
            return (
                number == 2
                and kind == protobuf.LENGTH
                and isinstance(value, bytes)
                and any(True for _ in protobuf.messages(value, 2))
            )
    except protobuf.ProtobufError:
        return False
    return False
