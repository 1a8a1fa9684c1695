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

/// One op served by a Python composite.
#[derive(Copy, Clone, Debug)]
pub struct CompositeDef {
    /// TensorFlow op type, e.g. `ResourceApplyAdam`.
    pub name: &'static str,
    /// How the composite computes it (one line for docs/ops.md).
    pub summary: &'static str,
}

/// Every op served by a Python composite, sorted by name.
pub const COMPOSITES: &[CompositeDef] = &[
    CompositeDef {
        name: "ResourceApplyAdaMax",
        summary: "reads the variable and slots, updates them on the NPU with the formula of TensorFlow's CPU kernel, assigns them back",
    },
    CompositeDef {
        name: "ResourceApplyAdadelta",
        summary: "reads the variable and slots, updates them on the NPU with the formula of TensorFlow's CPU kernel, assigns them back",
    },
    CompositeDef {
        name: "ResourceApplyAdagrad",
        summary: "reads the variable and slots, updates them on the NPU with the formula of TensorFlow's CPU kernel, assigns them back",
    },
    CompositeDef {
        name: "ResourceApplyAdagradDA",
        summary: "reads the variable and slots, updates them on the NPU with the formula of TensorFlow's CPU kernel, assigns them back",
    },
    CompositeDef {
        name: "ResourceApplyAdagradV2",
        summary: "reads the variable and slots, updates them on the NPU with the formula of TensorFlow's CPU kernel, assigns them back",
    },
    CompositeDef {
        name: "ResourceApplyAdam",
        summary: "reads the variable and slots, updates them on the NPU with the formula of TensorFlow's CPU kernel, assigns them back",
    },
    CompositeDef {
        name: "ResourceApplyAdamWithAmsgrad",
        summary: "reads the variable and slots, updates them on the NPU with the formula of TensorFlow's CPU kernel, assigns them back",
    },
    CompositeDef {
        name: "ResourceApplyAddSign",
        summary: "reads the variable and slots, updates them on the NPU with the formula of TensorFlow's CPU kernel, assigns them back",
    },
    CompositeDef {
        name: "ResourceApplyCenteredRMSProp",
        summary: "reads the variable and slots, updates them on the NPU with the formula of TensorFlow's CPU kernel, assigns them back",
    },
    CompositeDef {
        name: "ResourceApplyFtrl",
        summary: "reads the variable and slots, updates them on the NPU with the formula of TensorFlow's CPU kernel, assigns them back",
    },
    CompositeDef {
        name: "ResourceApplyFtrlV2",
        summary: "reads the variable and slots, updates them on the NPU with the formula of TensorFlow's CPU kernel, assigns them back",
    },
    CompositeDef {
        name: "ResourceApplyGradientDescent",
        summary: "reads the variable and slots, updates them on the NPU with the formula of TensorFlow's CPU kernel, assigns them back",
    },
    CompositeDef {
        name: "ResourceApplyKerasMomentum",
        summary: "reads the variable and slots, updates them on the NPU with the formula of TensorFlow's CPU kernel, assigns them back",
    },
    CompositeDef {
        name: "ResourceApplyMomentum",
        summary: "reads the variable and slots, updates them on the NPU with the formula of TensorFlow's CPU kernel, assigns them back",
    },
    CompositeDef {
        name: "ResourceApplyPowerSign",
        summary: "reads the variable and slots, updates them on the NPU with the formula of TensorFlow's CPU kernel, assigns them back",
    },
    CompositeDef {
        name: "ResourceApplyProximalAdagrad",
        summary: "reads the variable and slots, updates them on the NPU with the formula of TensorFlow's CPU kernel, assigns them back",
    },
    CompositeDef {
        name: "ResourceApplyProximalGradientDescent",
        summary: "reads the variable and slots, updates them on the NPU with the formula of TensorFlow's CPU kernel, assigns them back",
    },
    CompositeDef {
        name: "ResourceApplyRMSProp",
        summary: "reads the variable and slots, updates them on the NPU with the formula of TensorFlow's CPU kernel, assigns them back",
    },
    CompositeDef {
        name: "ResourceGather",
        summary: "GatherV2 of the variable's value on the NPU",
    },
    CompositeDef {
        name: "ResourceGatherNd",
        summary: "GatherV2 on the value flattened over the indexed dims (flat indices computed on the host)",
    },
    CompositeDef {
        name: "ResourceScatterAdd",
        summary: "TensorScatterAdd of the variable's value, then AssignVariableOp",
    },
    CompositeDef {
        name: "ResourceScatterDiv",
        summary: "rows gathered and multiplied/divided on the NPU, in rounds over repeated indices (in order, as on the CPU), scattered back",
    },
    CompositeDef {
        name: "ResourceScatterMax",
        summary: "TensorScatterMax of the variable's value, then AssignVariableOp",
    },
    CompositeDef {
        name: "ResourceScatterMin",
        summary: "TensorScatterMin of the variable's value, then AssignVariableOp",
    },
    CompositeDef {
        name: "ResourceScatterMul",
        summary: "rows gathered and multiplied/divided on the NPU, in rounds over repeated indices (in order, as on the CPU), scattered back",
    },
    CompositeDef {
        name: "ResourceScatterNdAdd",
        summary: "TensorScatterAdd of the variable's value (bad_indices_policy honoured), then AssignVariableOp",
    },
    CompositeDef {
        name: "ResourceScatterNdMax",
        summary: "TensorScatterMax of the variable's value (bad_indices_policy honoured), then AssignVariableOp",
    },
    CompositeDef {
        name: "ResourceScatterNdMin",
        summary: "TensorScatterMin of the variable's value (bad_indices_policy honoured), then AssignVariableOp",
    },
    CompositeDef {
        name: "ResourceScatterNdSub",
        summary: "TensorScatterSub of the variable's value (bad_indices_policy honoured), then AssignVariableOp",
    },
    CompositeDef {
        name: "ResourceScatterNdUpdate",
        summary: "TensorScatterUpdate of the variable's value (bad_indices_policy honoured), then AssignVariableOp",
    },
    CompositeDef {
        name: "ResourceScatterSub",
        summary: "TensorScatterSub of the variable's value, then AssignVariableOp",
    },
    CompositeDef {
        name: "ResourceScatterUpdate",
        summary: "TensorScatterUpdate of the variable's value, then AssignVariableOp",
    },
    CompositeDef {
        name: "ResourceSparseApplyAdadelta",
        summary: "the same update on the rows `indices` (gathered on the NPU; repeated indices applied in order, as on the CPU), scattered back",
    },
    CompositeDef {
        name: "ResourceSparseApplyAdagrad",
        summary: "the same update on the rows `indices` (gathered on the NPU; repeated indices applied in order, as on the CPU), scattered back",
    },
    CompositeDef {
        name: "ResourceSparseApplyAdagradDA",
        summary: "the same update on the rows `indices` (gathered on the NPU; repeated indices applied in order, as on the CPU), scattered back",
    },
    CompositeDef {
        name: "ResourceSparseApplyAdagradV2",
        summary: "the same update on the rows `indices` (gathered on the NPU; repeated indices applied in order, as on the CPU), scattered back",
    },
    CompositeDef {
        name: "ResourceSparseApplyCenteredRMSProp",
        summary: "the same update on the rows `indices` (gathered on the NPU; repeated indices applied in order, as on the CPU), scattered back",
    },
    CompositeDef {
        name: "ResourceSparseApplyFtrl",
        summary: "the same update on the rows `indices` (gathered on the NPU; repeated indices applied in order, as on the CPU), scattered back",
    },
    CompositeDef {
        name: "ResourceSparseApplyFtrlV2",
        summary: "the same update on the rows `indices` (gathered on the NPU; repeated indices applied in order, as on the CPU), scattered back",
    },
    CompositeDef {
        name: "ResourceSparseApplyKerasMomentum",
        summary: "the same update on the rows `indices` (gathered on the NPU; repeated indices applied in order, as on the CPU), scattered back",
    },
    CompositeDef {
        name: "ResourceSparseApplyMomentum",
        summary: "the same update on the rows `indices` (gathered on the NPU; repeated indices applied in order, as on the CPU), scattered back",
    },
    CompositeDef {
        name: "ResourceSparseApplyProximalAdagrad",
        summary: "the same update on the rows `indices` (gathered on the NPU; repeated indices applied in order, as on the CPU), scattered back",
    },
    CompositeDef {
        name: "ResourceSparseApplyProximalGradientDescent",
        summary: "the same update on the rows `indices` (gathered on the NPU; repeated indices applied in order, as on the CPU), scattered back",
    },
    CompositeDef {
        name: "ResourceSparseApplyRMSProp",
        summary: "the same update on the rows `indices` (gathered on the NPU; repeated indices applied in order, as on the CPU), scattered back",
    },
    CompositeDef {
        name: "ResourceStridedSliceAssign",
        summary: "TensorStridedSliceUpdate of the variable's value (`v[...].assign`), then AssignVariableOp",
    },
];

#[cfg(test)]
mod tests {
    use super::COMPOSITES;

    #[test]
    fn composites_are_sorted_unique_and_not_kernels() {
        for w in COMPOSITES.windows(2) {
            assert!(w[0].name < w[1].name, "{} / {}", w[0].name, w[1].name);
        }
        for c in COMPOSITES {
            assert!(crate::find(c.name).is_none(), "{} has a kernel too", c.name);
        }
    }
}
