// Queries for Neo4j Browser over the knowledge graph and the model's results.
//
// Paste one block at a time: its `:param` lines first, then the query. The example ids come from the
// test catalog; take real ones from your data (MATCH (u:User) RETURN u.id LIMIT 5). The results
// queries (6-12) need an export first: scripts/export_to_neo4j.py --model DIR (see docs/neo4j.md).
// tests/unit/test_cypher.py keeps this file equal to kg.cypher.EXPLORE and EXPLORE_RESULTS and
// parses every query; the live tests run them.

// ===== The knowledge graph =======================================================================

// 1. A product's brand and category path: one row per category it is filed under,
// category_path from the root down.
:param product_id => 'B0001'
MATCH (p:Product {id: $product_id})
OPTIONAL MATCH (p)-[:HAS_BRAND]->(b:Brand)
OPTIONAL MATCH (p)-[:IN_CATEGORY]->(leaf:Category)
OPTIONAL MATCH path = (leaf)-[:SUBCATEGORY_OF*]->(root:Category)
WHERE NOT (root)-[:SUBCATEGORY_OF]->()
RETURN p.id AS product, p.title AS title, p.price AS price, b.name AS brand,
       coalesce([c IN reverse(nodes(path)) | c.name], [leaf.name]) AS category_path;

// 2. A user's history: interactions in arrival order, with the time (null when the input
// had none), the event and the product's brand.
:param user_id => 'U1'
:param k => 50
MATCH (u:User {id: $user_id})-[r:INTERACTED]->(p:Product)
OPTIONAL MATCH (p)-[:HAS_BRAND]->(b:Brand)
RETURN r.seq AS seq, r.event AS event, r.weight AS weight,
       CASE WHEN r.timestamp IS NULL THEN null ELSE datetime({epochSeconds: r.timestamp}) END AS at,
       p.id AS product, p.title AS title, b.name AS brand
ORDER BY r.seq
LIMIT $k;

// 3. Brands that share customers: pairs of brands whose products the same users
// interacted with, most shared customers first.
:param min_shared => 2
:param k => 25
MATCH (b1:Brand)<-[:HAS_BRAND]-(:Product)<-[:INTERACTED]-(u:User)-[:INTERACTED]->(:Product)-[:HAS_BRAND]->(b2:Brand)
WHERE b1.id < b2.id
WITH b1, b2, count(DISTINCT u) AS shared_customers
WHERE shared_customers >= $min_shared
RETURN b1.name AS brand, b2.name AS other_brand, shared_customers
ORDER BY shared_customers DESC, brand, other_brand
LIMIT $k;

// 4. The category tree down to $max_level (0 = roots), with parents and product counts,
// in tree order (a category's id is its path from the root).
:param max_level => 2
MATCH (c:Category)
WHERE c.level <= $max_level
OPTIONAL MATCH (c)-[:SUBCATEGORY_OF]->(parent:Category)
OPTIONAL MATCH (p:Product)-[:IN_CATEGORY]->(c)
RETURN c.level AS level, c.name AS name, parent.name AS parent, count(p) AS products, c.id AS path
ORDER BY path;

// 5. Products two hops from a user: catalog products linked by a product relation
// (ALSO_BOUGHT, ...) to something the user interacted with, not yet touched by them.
:param user_id => 'U1'
:param k => 20
MATCH (u:User {id: $user_id})-[:INTERACTED]->(seen:Product)-[rel]-(p:Product)
WHERE p.in_catalog AND NOT (u)-[:INTERACTED]->(p)
RETURN p.id AS product, p.title AS title, count(DISTINCT seen) AS via_products,
       collect(DISTINCT type(rel)) AS relations
ORDER BY via_products DESC, product
LIMIT $k;

// 5a. The same neighbourhoods as pictures (switch the frame to the graph view): a product's brand
// and leaf categories,
:param product_id => 'B0001'
MATCH path = (p:Product {id: $product_id})-[:HAS_BRAND|IN_CATEGORY]->()
RETURN path;

// 5b. a user's products with the products they are related to,
:param user_id => 'U1'
:param k => 50
MATCH path = (u:User {id: $user_id})-[:INTERACTED]->(:Product)-[]-(:Product)
RETURN path
LIMIT $k;

// 5c. and what is stored: nodes per label.
MATCH (n)
RETURN labels(n) AS labels, count(*) AS nodes
ORDER BY nodes DESC;

// ===== The model's results =======================================================================

// 6. A user's history beside their recommendations: side INTERACTED rows in
// arrival order (position = seq), then side RECOMMENDED rows best first
// (position = rank), with brand, score and model version.
:param user_id => 'U2'
MATCH (u:User {id: $user_id})-[r:INTERACTED|RECOMMENDED]->(p:Product)
OPTIONAL MATCH (p)-[:HAS_BRAND]->(b:Brand)
RETURN type(r) AS side, coalesce(r.rank, r.seq) AS position, p.id AS product, p.title AS title,
       b.name AS brand, r.score AS score, r.model AS model
ORDER BY side, position;

// 7. Why was this product recommended? Paths from the user through a product they
// interacted with to the recommended product (a product relation such as ALSO_BOUGHT)
// or to a brand or category the two share. In the graph view, `path` and `rec` draw
// the explanation beside the RECOMMENDED relationship.
:param user_id => 'U2'
:param product_id => 'B0002'
:param k => 25
MATCH (u:User {id: $user_id})-[rec:RECOMMENDED]->(p:Product {id: $product_id})
MATCH path = (u)-[:INTERACTED]->(seen:Product)-[link:HAS_BRAND|IN_CATEGORY|ALSO_BOUGHT|ALSO_VIEWED|BOUGHT_TOGETHER|BOUGHT_AFTER_VIEWING|SUBSTITUTE_OF|COMPLEMENT_OF|ACCESSORY_OF|VARIANT_OF|RELATED_TO]-(via)
WHERE seen <> p AND (via = p OR (via)<-[:HAS_BRAND|IN_CATEGORY]-(p))
RETURN rec.rank AS rank, seen.id AS seen, seen.title AS seen_title, type(link) AS link,
       coalesce(via.name, via.title) AS via, path, rec, p
LIMIT $k;

// 8. A product's SIMILAR_TO neighbours as the model wrote them, best first.
:param product_id => 'B0001'
:param k => 10
MATCH (p:Product {id: $product_id})-[s:SIMILAR_TO]->(q:Product)
OPTIONAL MATCH (q)-[:HAS_BRAND]->(b:Brand)
RETURN s.rank AS rank, q.id AS product, q.title AS title, b.name AS brand, s.score AS score,
       s.model AS model
ORDER BY rank
LIMIT $k;

// 9. The same question asked of the vector index product_embedding: the k products
// with the nearest embeddings (the product itself skipped). Cosine scores are mapped
// to [0, 1]; 1 = same direction.
:param product_id => 'B0001'
:param k => 10
:param index => 'product_embedding'
MATCH (p:Product {id: $product_id})
CALL db.index.vector.queryNodes($index, $k + 1, p.embedding) YIELD node, score
WHERE node <> p
RETURN node.id AS product, node.title AS title, score
ORDER BY score DESC
LIMIT $k;

// 10. A user's recommendations whose brand already appears in their history,
// with how many history items carry that brand.
:param user_id => 'U2'
MATCH (u:User {id: $user_id})-[rec:RECOMMENDED]->(p:Product)-[:HAS_BRAND]->(b:Brand)
WHERE (u)-[:INTERACTED]->(:Product)-[:HAS_BRAND]->(b)
RETURN rec.rank AS rank, p.id AS product, p.title AS title, b.name AS brand,
       size([(u)-[:INTERACTED]->(h:Product)-[:HAS_BRAND]->(b) | h]) AS brand_in_history
ORDER BY rank;

// 11. Model version check: which model versions the stored RECOMMENDED and SIMILAR_TO
// relationships come from (exactly one per type after an export), with score ranges.
MATCH ()-[r:RECOMMENDED|SIMILAR_TO]->()
RETURN type(r) AS relationship, r.model AS model, count(*) AS relationships,
       min(r.score) AS min_score, max(r.score) AS max_score
ORDER BY relationship, model;

// 12. Which model version wrote the product embeddings, and their dimension.
MATCH (p:Product)
WHERE p.embedding IS NOT NULL
RETURN p.embedding_model AS model, count(*) AS products, min(size(p.embedding)) AS dimensions
ORDER BY model;
