//! Ops the NPU serves with Python composites rather than kernels.
//!
//! A kernel that reads or updates a resource variable needs TensorFlow's
//! variable C API, which the TensorFlow 2.21 wheel does not export; so on an
//! NPU variable these ops are rewritten in Python
//! (`python/tf_adapter/_resource_ops.py`) into `ReadVariableOp` -> ops of the
//! table -> `AssignVariableOp`, each step on the NPU where the table has its
//! kernel. They are declared here so that docs/ops.md and Python read one
//! list (`_native.composite_ops()`; tests/python/test_resource_ops.py checks
//! that Python implements exactly these).

use crate::registry::OutsideOp;

/// Every op served by a Python composite, sorted by name.
pub const COMPOSITES: &[OutsideOp] = &[
    OutsideOp {
        name: "ResourceApplyAdaMax",
        summary: "reads the variable and slots, updates them on the NPU with the formula of TensorFlow's CPU kernel, assigns them back",
    },
    OutsideOp {
        name: "ResourceApplyAdadelta",
        summary: "reads the variable and slots, updates them on the NPU with the formula of TensorFlow's CPU kernel, assigns them back",
    },
    OutsideOp {
        name: "ResourceApplyAdagrad",
        summary: "reads the variable and slots, updates them on the NPU with the formula of TensorFlow's CPU kernel, assigns them back",
    },
    OutsideOp {
        name: "ResourceApplyAdagradDA",
        summary: "reads the variable and slots, updates them on the NPU with the formula of TensorFlow's CPU kernel, assigns them back",
    },
    OutsideOp {
        name: "ResourceApplyAdagradV2",
        summary: "reads the variable and slots, updates them on the NPU with the formula of TensorFlow's CPU kernel, assigns them back",
    },
    OutsideOp {
        name: "ResourceApplyAdam",
        summary: "reads the variable and slots, updates them on the NPU with the formula of TensorFlow's CPU kernel, assigns them back",
    },
    OutsideOp {
        name: "ResourceApplyAdamWithAmsgrad",
        summary: "reads the variable and slots, updates them on the NPU with the formula of TensorFlow's CPU kernel, assigns them back",
    },
    OutsideOp {
        name: "ResourceApplyAddSign",
        summary: "reads the variable and slots, updates them on the NPU with the formula of TensorFlow's CPU kernel, assigns them back",
    },
    OutsideOp {
        name: "ResourceApplyCenteredRMSProp",
        summary: "reads the variable and slots, updates them on the NPU with the formula of TensorFlow's CPU kernel, assigns them back",
    },
    OutsideOp {
        name: "ResourceApplyFtrl",
        summary: "reads the variable and slots, updates them on the NPU with the formula of TensorFlow's CPU kernel, assigns them back",
    },
    OutsideOp {
        name: "ResourceApplyFtrlV2",
        summary: "reads the variable and slots, updates them on the NPU with the formula of TensorFlow's CPU kernel, assigns them back",
    },
    OutsideOp {
        name: "ResourceApplyGradientDescent",
        summary: "reads the variable and slots, updates them on the NPU with the formula of TensorFlow's CPU kernel, assigns them back",
    },
    OutsideOp {
        name: "ResourceApplyKerasMomentum",
        summary: "reads the variable and slots, updates them on the NPU with the formula of TensorFlow's CPU kernel, assigns them back",
    },
    OutsideOp {
        name: "ResourceApplyMomentum",
        summary: "reads the variable and slots, updates them on the NPU with the formula of TensorFlow's CPU kernel, assigns them back",
    },
    OutsideOp {
        name: "ResourceApplyPowerSign",
        summary: "reads the variable and slots, updates them on the NPU with the formula of TensorFlow's CPU kernel, assigns them back",
    },
    OutsideOp {
        name: "ResourceApplyProximalAdagrad",
        summary: "reads the variable and slots, updates them on the NPU with the formula of TensorFlow's CPU kernel, assigns them back",
    },
    OutsideOp {
        name: "ResourceApplyProximalGradientDescent",
        summary: "reads the variable and slots, updates them on the NPU with the formula of TensorFlow's CPU kernel, assigns them back",
    },
    OutsideOp {
        name: "ResourceApplyRMSProp",
        summary: "reads the variable and slots, updates them on the NPU with the formula of TensorFlow's CPU kernel, assigns them back",
    },
    OutsideOp {
        name: "ResourceGather",
        summary: "GatherV2 of the variable's value on the NPU",
    },
    OutsideOp {
        name: "ResourceGatherNd",
        summary: "GatherV2 on the value flattened over the indexed dims (flat indices computed on the host)",
    },
    OutsideOp {
        name: "ResourceScatterAdd",
        summary: "TensorScatterAdd of the variable's value, then AssignVariableOp",
    },
    OutsideOp {
        name: "ResourceScatterDiv",
        summary: "rows gathered and multiplied/divided on the NPU, in rounds over repeated indices (in order, as on the CPU), scattered back",
    },
    OutsideOp {
        name: "ResourceScatterMax",
        summary: "TensorScatterMax of the variable's value, then AssignVariableOp",
    },
    OutsideOp {
        name: "ResourceScatterMin",
        summary: "TensorScatterMin of the variable's value, then AssignVariableOp",
    },
    OutsideOp {
        name: "ResourceScatterMul",
        summary: "rows gathered and multiplied/divided on the NPU, in rounds over repeated indices (in order, as on the CPU), scattered back",
    },
    OutsideOp {
        name: "ResourceScatterNdAdd",
        summary: "TensorScatterAdd of the variable's value (bad_indices_policy honoured), then AssignVariableOp",
    },
    OutsideOp {
        name: "ResourceScatterNdMax",
        summary: "TensorScatterMax of the variable's value (bad_indices_policy honoured), then AssignVariableOp",
    },
    OutsideOp {
        name: "ResourceScatterNdMin",
        summary: "TensorScatterMin of the variable's value (bad_indices_policy honoured), then AssignVariableOp",
    },
    OutsideOp {
        name: "ResourceScatterNdSub",
        summary: "TensorScatterSub of the variable's value (bad_indices_policy honoured), then AssignVariableOp",
    },
    OutsideOp {
        name: "ResourceScatterNdUpdate",
        summary: "TensorScatterUpdate of the variable's value (bad_indices_policy honoured), then AssignVariableOp",
    },
    OutsideOp {
        name: "ResourceScatterSub",
        summary: "TensorScatterSub of the variable's value, then AssignVariableOp",
    },
    OutsideOp {
        name: "ResourceScatterUpdate",
        summary: "TensorScatterUpdate of the variable's value, then AssignVariableOp",
    },
    OutsideOp {
        name: "ResourceSparseApplyAdadelta",
        summary: "the same update on the rows `indices` (gathered on the NPU; repeated indices applied in order, as on the CPU), scattered back",
    },
    OutsideOp {
        name: "ResourceSparseApplyAdagrad",
        summary: "the same update on the rows `indices` (gathered on the NPU; repeated indices applied in order, as on the CPU), scattered back",
    },
    OutsideOp {
        name: "ResourceSparseApplyAdagradDA",
        summary: "the same update on the rows `indices` (gathered on the NPU; repeated indices applied in order, as on the CPU), scattered back",
    },
    OutsideOp {
        name: "ResourceSparseApplyAdagradV2",
        summary: "the same update on the rows `indices` (gathered on the NPU; repeated indices applied in order, as on the CPU), scattered back",
    },
    OutsideOp {
        name: "ResourceSparseApplyCenteredRMSProp",
        summary: "the same update on the rows `indices` (gathered on the NPU; repeated indices applied in order, as on the CPU), scattered back",
    },
    OutsideOp {
        name: "ResourceSparseApplyFtrl",
        summary: "the same update on the rows `indices` (gathered on the NPU; repeated indices applied in order, as on the CPU), scattered back",
    },
    OutsideOp {
        name: "ResourceSparseApplyFtrlV2",
        summary: "the same update on the rows `indices` (gathered on the NPU; repeated indices applied in order, as on the CPU), scattered back",
    },
    OutsideOp {
        name: "ResourceSparseApplyKerasMomentum",
        summary: "the same update on the rows `indices` (gathered on the NPU; repeated indices applied in order, as on the CPU), scattered back",
    },
    OutsideOp {
        name: "ResourceSparseApplyMomentum",
        summary: "the same update on the rows `indices` (gathered on the NPU; repeated indices applied in order, as on the CPU), scattered back",
    },
    OutsideOp {
        name: "ResourceSparseApplyProximalAdagrad",
        summary: "the same update on the rows `indices` (gathered on the NPU; repeated indices applied in order, as on the CPU), scattered back",
    },
    OutsideOp {
        name: "ResourceSparseApplyProximalGradientDescent",
        summary: "the same update on the rows `indices` (gathered on the NPU; repeated indices applied in order, as on the CPU), scattered back",
    },
    OutsideOp {
        name: "ResourceSparseApplyRMSProp",
        summary: "the same update on the rows `indices` (gathered on the NPU; repeated indices applied in order, as on the CPU), scattered back",
    },
    OutsideOp {
        name: "ResourceStridedSliceAssign",
        summary: "TensorStridedSliceUpdate of the variable's value (`v[...].assign`), then AssignVariableOp",
    },
];
