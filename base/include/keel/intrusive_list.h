// Intrusive doubly linked lists: the element carries its own links, so putting it on a list
// never allocates and taking it off is O(1) without knowing which list it is on.
// Header-only and freestanding.
#pragma once

#include <cstddef>

#include "keel/panic.h"

namespace keel {

/// The links of one list membership. An element joins a list by deriving from ListNode<Tag>;
/// an element that must sit on two lists at once derives twice with different tags.
/// A node unlinks itself when destroyed, so an element may die while still on a list.
template <typename Tag = void>
class ListNode {
public:
    ListNode() = default;
    ListNode(const ListNode&) = delete;
    ListNode& operator=(const ListNode&) = delete;
    ~ListNode() { unlink(); }

    /// True while the node is on some list.
    bool linked() const { return next_ != nullptr; }

    /// Take the node off whatever list it is on (no-op when it is on none).
    void unlink() {
        if (next_ == nullptr) return;
        prev_->next_ = next_;
        next_->prev_ = prev_;
        prev_ = next_ = nullptr;
    }

private:
    template <typename, typename>
    friend class IntrusiveList;

    ListNode* prev_ = nullptr;
    ListNode* next_ = nullptr;
};

/// A circular list with a sentinel head. T must derive (publicly, or privately with this list
/// as a friend) from ListNode<Tag>. The list does not own its elements; destroying the list
/// unlinks whatever is still on it. Not copyable or movable: elements point at the sentinel.
template <typename T, typename Tag = void>
class IntrusiveList {
    using Node = ListNode<Tag>;

public:
    IntrusiveList() { head_.prev_ = head_.next_ = &head_; }
    IntrusiveList(const IntrusiveList&) = delete;
    IntrusiveList& operator=(const IntrusiveList&) = delete;
    ~IntrusiveList() { clear(); }

    bool empty() const { return head_.next_ == &head_; }

    /// O(n): counts the elements.
    std::size_t size() const {
        std::size_t n = 0;
        for (const Node* p = head_.next_; p != &head_; p = p->next_) ++n;
        return n;
    }

    T* front() { return empty() ? nullptr : to_elem(head_.next_); }
    T* back() { return empty() ? nullptr : to_elem(head_.prev_); }

    /// The element after `e` on this list, or nullptr at the end.
    T* next(T& e) {
        Node* n = to_node(e).next_;
        return n == &head_ ? nullptr : to_elem(n);
    }

    /// The element before `e` on this list, or nullptr at the front.
    T* prev(T& e) {
        Node* n = to_node(e).prev_;
        return n == &head_ ? nullptr : to_elem(n);
    }

    void push_back(T& e) { link_before(&head_, to_node(e)); }
    void push_front(T& e) { link_before(head_.next_, to_node(e)); }
    /// Insert `e` just before `pos`, which must be on this list.
    void insert_before(T& pos, T& e) { link_before(&to_node(pos), to_node(e)); }
    /// Insert `e` just after `pos`, which must be on this list.
    void insert_after(T& pos, T& e) { link_before(to_node(pos).next_, to_node(e)); }

    T* pop_front() {
        if (empty()) return nullptr;
        Node* n = head_.next_;
        n->unlink();
        return to_elem(n);
    }

    /// Unlink every element.
    void clear() {
        while (!empty()) head_.next_->unlink();
    }

    /// Move every element of `other` to the end of this list, keeping their order.
    void splice_back(IntrusiveList& other) {
        if (other.empty()) return;
        Node* first = other.head_.next_;
        Node* last = other.head_.prev_;
        other.head_.prev_ = other.head_.next_ = &other.head_;
        first->prev_ = head_.prev_;
        last->next_ = &head_;
        head_.prev_->next_ = first;
        head_.prev_ = last;
    }

    /// Move the elements from the front of `other` up to (not including) `stop` to the end of
    /// this list. `stop` must be on `other`; nullptr moves everything.
    void splice_back_until(IntrusiveList& other, T* stop) {
        if (stop == nullptr) {
            splice_back(other);
            return;
        }
        Node* s = &to_node(*stop);
        if (other.head_.next_ == s) return;
        Node* first = other.head_.next_;
        Node* last = s->prev_;
        other.head_.next_ = s;
        s->prev_ = &other.head_;
        first->prev_ = head_.prev_;
        last->next_ = &head_;
        head_.prev_->next_ = first;
        head_.prev_ = last;
    }

    class iterator {
    public:
        explicit iterator(Node* n) : n_(n) {}
        T& operator*() const { return *to_elem(n_); }
        T* operator->() const { return to_elem(n_); }
        iterator& operator++() {
            n_ = n_->next_;
            return *this;
        }
        bool operator==(const iterator& o) const { return n_ == o.n_; }
        bool operator!=(const iterator& o) const { return n_ != o.n_; }

    private:
        Node* n_;
    };
    /// Iteration must not unlink the current element; use pop_front/next for that.
    iterator begin() { return iterator(head_.next_); }
    iterator end() { return iterator(&head_); }

private:
    static Node& to_node(T& e) { return static_cast<Node&>(e); }
    static T* to_elem(Node* n) { return static_cast<T*>(n); }
    static void link_before(Node* pos, Node& n) {
        // An element on one list cannot join another: that would corrupt both.
        KASSERT(n.next_ == nullptr);
        n.prev_ = pos->prev_;
        n.next_ = pos;
        pos->prev_->next_ = &n;
        pos->prev_ = &n;
    }

    Node head_;
};

}  // namespace keel
