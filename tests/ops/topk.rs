//! TopK against tract: values and indices, largest and smallest, along the last and a
//! middle axis, k = 1 and k > 1. Random inputs have no ties; the tie case uses inputs on a
//! coarse grid, where equal values must come out lower index first.

use super::*;

fn top_k(name: &str, dims: &[Option<i64>], k: i64, attrs: Vec<Attr>) -> Case {
    case(name, 13)
        .input("x", dims)
        .init_i64("k", &[k])
        .node("TopK", &["x", "k"], &["values", "indices"], attrs)
        .output("values")
        .output("indices")
}

#[test]
fn top_k_values_and_indices() {
    run_all(vec![
        top_k("topk-largest", &[N, Some(7)], 3, vec![]),
        top_k("topk-smallest", &[N, Some(7)], 3, vec![int("largest", 0)]),
        top_k("topk-one", &[N, Some(5)], 1, vec![]),
        top_k("topk-all", &[N, Some(4)], 4, vec![int("largest", 0)]),
        top_k(
            "topk-middle-axis",
            &[N, Some(6), Some(3)],
            2,
            vec![int("axis", 1)],
        ),
        top_k("topk-ties", &[N, Some(8)], 3, vec![]).input_step(0.5),
    ]);
}

#[test]
fn top_k_refuses_the_batch_axis() {
    refuse_all(vec![(
        top_k("topk-batch-axis", &[N, Some(4)], 1, vec![int("axis", 0)]),
        &["batch axis"],
    )]);
}
