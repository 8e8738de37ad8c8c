-- The take-home's MERGE (background 003), kept as a .sql file beside the DAG as with
-- Airflow's template_searchpath. Rendered as a template: the staging table is the day's.
MERGE updraft_examples.orders T
USING updraft_examples.orders_staging_{{ .ds_nodash }} S
ON T.id = S.id
WHEN MATCHED THEN UPDATE SET customer = S.customer, amount = S.amount, order_date = S.order_date
WHEN NOT MATCHED THEN INSERT (id, customer, amount, order_date) VALUES (S.id, S.customer, S.amount, S.order_date)
