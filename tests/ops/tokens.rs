//! Token-id inputs (src/lower/tokens.rs): int64 ids that index embedding tables, one-hot
//! encoded by the client, looked up as a product with the secret table, and read as numbers
//! by other nodes.

use super::*;

#[test]
fn token_ids() {
    let ids = |name: &str| case(name, 13).token_input("ids", &[N, Some(5)], 11);
    run_all(vec![
        // An embedding lookup, then a linear layer: [N, 5] ids, [11, 6] table.
        ids("token-embedding")
            .weight("table", &[11, 6])
            .weight("w", &[6, 3])
            .node("Gather", &["table", "ids"], &["e"], vec![])
            .node("MatMul", &["e", "w"], &["y"], vec![])
            .output("y"),
        // A table of rank 3, flattened for the product and shaped back.
        ids("token-embedding-rank-3")
            .weight("table", &[11, 2, 3])
            .node("Gather", &["table", "ids"], &["y"], vec![])
            .output("y"),
        // Two tables of the same rows read one encoding; the ids are also numbers.
        ids("token-ids-as-numbers")
            .weight("words", &[11, 4])
            .weight("tags", &[11, 4])
            .node("Gather", &["words", "ids"], &["w"], vec![])
            .node("Gather", &["tags", "ids"], &["t"], vec![])
            .node("Add", &["w", "t"], &["e"], vec![])
            .init_i64("axes", &[2])
            .node(
                "ReduceSum",
                &["e", "axes"],
                &["s"],
                vec![int("keepdims", 0)],
            )
            .node("Cast", &["ids"], &["f"], vec![int("to", 1)])
            .scalar("half", 0.5)
            .node("Mul", &["f", "half"], &["g"], vec![])
            .node("Add", &["s", "g"], &["y"], vec![])
            .output("y"),
        // Ids reshaped before the lookup (GPT-2 flattens them to [-1, S]).
        ids("token-ids-reshaped")
            .weight("table", &[11, 6])
            .init_i64("rows", &[-1, 5])
            .node("Reshape", &["ids", "rows"], &["flat"], vec![])
            .node("Gather", &["table", "flat"], &["y"], vec![])
            .output("y"),
    ]);
}

#[test]
fn token_refusals_say_why() {
    refuse_all(vec![(
        case("token-two-vocabularies", 13)
            .token_input("ids", &[N, Some(5)], 7)
            .weight("a", &[7, 4])
            .weight("b", &[9, 4])
            .node("Gather", &["a", "ids"], &["x"], vec![])
            .node("Gather", &["b", "ids"], &["y"], vec![])
            .node("Add", &["x", "y"], &["z"], vec![])
            .output("z"),
        &["indexes tables of 7 and 9 rows"],
    )]);
}

/// Ids outside the vocabulary, or not integers, are refused naming the input.
#[test]
fn token_ids_out_of_the_vocabulary() {
    let c = case("token-out-of-vocabulary", 13)
        .token_input("ids", &[N, Some(2)], 5)
        .weight("table", &[5, 3])
        .node("Gather", &["table", "ids"], &["y"], vec![])
        .output("y");
    let plan = tfe::lower::convert(&c.onnx.save(&c.name), c.options())
        .unwrap()
        .plan;
    for bad in [5.0, -1.0, 1.5] {
        let ids = tensor(&[1, 2], &[0.0, bad]);
        let e = tfe::serve::predict(
            &plan,
            &[ids],
            tfe::serve::Mode::Mpc(tfe::mpc::Protocol::Aby3),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            e.contains("input ids") && e.contains(&format!("{bad} is not a token id below 5")),
            "{e}"
        );
    }
}
