package local

import (
	"encoding/json"
	"hash/fnv"
	"net/http"
	"time"
)

// SampleOrders serves GET /examples/orders?date=YYYY-MM-DD: a partner API stand-in for the
// orders_to_warehouse_daily example. The same date always gives the same orders, so loading a
// day twice must leave one copy of each.
func SampleOrders(w http.ResponseWriter, r *http.Request) {
	day, err := time.Parse("2006-01-02", r.URL.Query().Get("date"))
	if err != nil {
		http.Error(w, `{"error": "date must be YYYY-MM-DD"}`, http.StatusBadRequest)
		return
	}
	h := fnv.New32a()
	h.Write([]byte(day.Format("2006-01-02")))
	seed := h.Sum32()
	customers := []string{"kim", "lee", "park", "choi", "jung"}
	type order struct {
		ID       int64   `json:"id"`
		Customer string  `json:"customer"`
		Amount   float64 `json:"amount"`
	}
	n := 3 + int(seed%3)
	orders := make([]order, n)
	for i := range orders {
		orders[i] = order{
			ID:       day.Unix()/86400*100 + int64(i),
			Customer: customers[(int(seed)+i)%len(customers)],
			Amount:   float64(1000+int(seed>>uint(i%16))%9000) / 100,
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"date": day.Format("2006-01-02"), "orders": orders})
}
