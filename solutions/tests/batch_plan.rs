//! The shape of `batch_etl`'s plan, which is what makes it fast (README, Performance):
//! each source shuffled once, on `customer_id` alone, and every aggregation done in a
//! single stage. Its results are checked in `batch_etl.rs`.

use std::sync::Arc;

use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::repartition::RepartitionExec;
use fixtures::batch::{CUSTOMERS_FILE, ORDERS_FILE, committed_dir};
use solutions::batch::summary_plan;

fn nodes(plan: &Arc<dyn ExecutionPlan>) -> Vec<Arc<dyn ExecutionPlan>> {
    let mut all = vec![Arc::clone(plan)];
    for child in plan.children() {
        all.extend(nodes(child));
    }
    all
}

#[tokio::test]
async fn each_source_is_shuffled_once_by_customer_and_aggregated_in_one_stage() {
    let dir = committed_dir();
    let (_, plan) = summary_plan(&dir.join(CUSTOMERS_FILE), &dir.join(ORDERS_FILE))
        .await
        .unwrap_or_else(|e| panic!("planning the customer summary: {e:#}"));
    let nodes = nodes(&plan);
    let shuffles: Vec<String> = nodes
        .iter()
        .filter_map(|node| node.downcast_ref::<RepartitionExec>())
        .map(|shuffle| shuffle.partitioning().to_string())
        .collect();
    let modes: Vec<AggregateMode> = nodes
        .iter()
        .filter_map(|node| node.downcast_ref::<AggregateExec>())
        .map(|aggregate| *aggregate.mode())
        .collect();

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores == 1 {
        // One partition: nothing to shuffle, and DataFusion's own plan is kept.
        assert!(shuffles.is_empty(), "no shuffle on one core: {shuffles:?}");
        return;
    }
    // A file too small to be read in ranges (these are) is spread round robin first.
    let by_key: Vec<&String> = shuffles
        .iter()
        .filter(|shuffle| !shuffle.starts_with("RoundRobinBatch"))
        .collect();
    assert_eq!(
        by_key.len(),
        2,
        "one shuffle by key per source, customers and orders: {shuffles:?}"
    );
    for shuffle in by_key {
        assert!(
            shuffle.starts_with("Hash([customer_id@") && shuffle.ends_with(&format!("], {cores})")),
            "each shuffle hashes customer_id alone into {cores} partitions: {shuffles:?}"
        );
    }
    // Two distincts, the customers' copies, the orders per customer.
    assert_eq!(
        modes,
        vec![AggregateMode::SinglePartitioned; 4],
        "every aggregation in one stage"
    );
}
