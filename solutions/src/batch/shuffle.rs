//! One shuffle by customer for the whole plan.
//!
//! Every hash step of the batch pipeline groups or joins on columns that include
//! `customer_id`: equal rows have equal customer ids, so rows hashed on `customer_id`
//! alone land where each distinct, aggregation and join needs them. DataFusion does not
//! see this: it shuffles again on the full key at each step (seven columns for the
//! orders' distinct, then `customer_id` for the summary, then for the join). This rule,
//! run after DataFusion's own, shuffles each source once on the key and aggregates
//! each group in a single stage. The join's own shuffle then goes too: both of its
//! sides arrive hashed on the key, and DataFusion's shuffles all use one fixed hash,
//! so partition n of each side holds the same customers.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties, Partitioning};

/// Rewrites `FinalPartitioned ← [shuffle ←] Partial` into `SinglePartitioned ← shuffle on
/// [key]` when the group key contains the column `key`, and drops a shuffle whose input
/// already has the partitioning it would produce.
#[derive(Debug)]
pub struct ShuffleOnceByKey {
    key: &'static str,
}

impl ShuffleOnceByKey {
    pub fn new(key: &'static str) -> Self {
        Self { key }
    }

    fn rewrite(&self, plan: Arc<dyn ExecutionPlan>) -> Result<Transformed<Arc<dyn ExecutionPlan>>> {
        if let Some(aggregate) = plan.downcast_ref::<AggregateExec>()
            && *aggregate.mode() == AggregateMode::FinalPartitioned
            && let Some(partial) = below_shuffle(aggregate.input()).downcast_ref::<AggregateExec>()
            && *partial.mode() == AggregateMode::Partial
            && let Some((key, _)) = partial
                .group_expr()
                .expr()
                .iter()
                .find(|(_, name)| name == self.key)
        {
            let partitions = plan.output_partitioning().partition_count();
            let by_key = Partitioning::Hash(vec![Arc::clone(key)], partitions);
            let single = AggregateExec::try_new(
                AggregateMode::SinglePartitioned,
                partial.group_expr().clone(),
                partial.aggr_expr().to_vec(),
                partial.filter_expr().to_vec(),
                shuffled(Arc::clone(partial.input()), by_key)?,
                partial.input_schema(),
            )?;
            return Ok(Transformed::yes(Arc::new(single)));
        }
        if let Some(shuffle) = plan.downcast_ref::<RepartitionExec>()
            && shuffle.input().output_partitioning() == shuffle.partitioning()
        {
            return Ok(Transformed::yes(Arc::clone(shuffle.input())));
        }
        Ok(Transformed::no(plan))
    }
}

/// What a shuffle reads, or `plan` itself when it is not a shuffle.
fn below_shuffle(plan: &Arc<dyn ExecutionPlan>) -> &Arc<dyn ExecutionPlan> {
    match plan.downcast_ref::<RepartitionExec>() {
        Some(shuffle) => shuffle.input(),
        None => plan,
    }
}

/// `input` partitioned as `partitioning`, shuffled only if it is not already.
fn shuffled(
    input: Arc<dyn ExecutionPlan>,
    partitioning: Partitioning,
) -> Result<Arc<dyn ExecutionPlan>> {
    if *input.output_partitioning() == partitioning {
        return Ok(input);
    }
    Ok(Arc::new(RepartitionExec::try_new(input, partitioning)?))
}

impl PhysicalOptimizerRule for ShuffleOnceByKey {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| self.rewrite(node)).data()
    }

    fn name(&self) -> &str {
        "shuffle_once_by_key"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
