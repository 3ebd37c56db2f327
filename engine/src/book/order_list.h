// The FIFO of orders at one price: intrusive and doubly linked, so appending,
// taking the front and unlinking a canceled order in the middle are all O(1).
#pragma once

#include "book/order.h"

namespace venue {

class OrderList {
 public:
  bool empty() const { return head_ == nullptr; }
  Order* front() const { return head_; }
  Order* back() const { return tail_; }

  void push_back(Order* order) {
    order->prev = tail_;
    order->next = nullptr;
    if (tail_ != nullptr) {
      tail_->next = order;
    } else {
      head_ = order;
    }
    tail_ = order;
  }

  // The order must be in this list.
  void erase(Order* order) {
    if (order->prev != nullptr) {
      order->prev->next = order->next;
    } else {
      head_ = order->next;
    }
    if (order->next != nullptr) {
      order->next->prev = order->prev;
    } else {
      tail_ = order->prev;
    }
    order->prev = nullptr;
    order->next = nullptr;
  }

 private:
  Order* head_ = nullptr;
  Order* tail_ = nullptr;
};

}  // namespace venue
