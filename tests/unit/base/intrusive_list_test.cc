// IntrusiveList: order, unlink from anywhere, splicing, self-unlinking nodes.
#include "keel/intrusive_list.h"

#include <gtest/gtest.h>

#include <vector>

namespace keel {
namespace {

struct Item : ListNode<> {
    explicit Item(int v) : value(v) {}
    int value;
};

std::vector<int> values(IntrusiveList<Item>& l) {
    std::vector<int> out;
    for (Item& i : l) out.push_back(i.value);
    return out;
}

TEST(IntrusiveList, PushPopOrder) {
    Item a(1), b(2), c(3);
    IntrusiveList<Item> l;
    EXPECT_TRUE(l.empty());
    l.push_back(b);
    l.push_back(c);
    l.push_front(a);
    EXPECT_EQ(values(l), (std::vector<int>{1, 2, 3}));
    EXPECT_EQ(l.size(), 3u);
    EXPECT_EQ(l.front(), &a);
    EXPECT_EQ(l.back(), &c);
    EXPECT_EQ(l.next(a), &b);
    EXPECT_EQ(l.next(c), nullptr);
    EXPECT_EQ(l.prev(a), nullptr);
    EXPECT_EQ(l.prev(c), &b);
    EXPECT_EQ(l.pop_front(), &a);
    EXPECT_FALSE(a.linked());
    EXPECT_EQ(values(l), (std::vector<int>{2, 3}));
}

TEST(IntrusiveList, InsertAndUnlink) {
    Item a(1), b(2), c(3), d(4);
    IntrusiveList<Item> l;
    l.push_back(a);
    l.push_back(d);
    l.insert_before(d, b);
    l.insert_after(b, c);
    EXPECT_EQ(values(l), (std::vector<int>{1, 2, 3, 4}));
    c.unlink();
    c.unlink();  // no-op when not linked
    EXPECT_EQ(values(l), (std::vector<int>{1, 2, 4}));
    {
        Item e(5);
        l.push_back(e);
        EXPECT_EQ(l.size(), 4u);
    }  // e unlinks itself
    EXPECT_EQ(values(l), (std::vector<int>{1, 2, 4}));
    l.clear();
    EXPECT_TRUE(l.empty());
    EXPECT_FALSE(a.linked());
}

TEST(IntrusiveList, Splice) {
    Item a(1), b(2), c(3), d(4), e(5);
    IntrusiveList<Item> x, y;
    x.push_back(a);
    y.push_back(b);
    y.push_back(c);
    y.push_back(d);
    y.push_back(e);
    x.splice_back_until(y, &d);
    EXPECT_EQ(values(x), (std::vector<int>{1, 2, 3}));
    EXPECT_EQ(values(y), (std::vector<int>{4, 5}));
    x.splice_back_until(y, &d);  // nothing before d
    EXPECT_EQ(values(y), (std::vector<int>{4, 5}));
    x.splice_back(y);
    EXPECT_TRUE(y.empty());
    EXPECT_EQ(values(x), (std::vector<int>{1, 2, 3, 4, 5}));
    y.splice_back_until(x, nullptr);
    EXPECT_TRUE(x.empty());
    EXPECT_EQ(values(y), (std::vector<int>{1, 2, 3, 4, 5}));
}

struct Tag1;
struct Tag2;
struct Both : ListNode<Tag1>, ListNode<Tag2> {
    int v = 0;
};

TEST(IntrusiveList, TwoListsAtOnce) {
    Both a, b;
    IntrusiveList<Both, Tag1> l1;
    IntrusiveList<Both, Tag2> l2;
    l1.push_back(a);
    l1.push_back(b);
    l2.push_back(b);
    l2.push_back(a);
    EXPECT_EQ(l1.front(), &a);
    EXPECT_EQ(l2.front(), &b);
    static_cast<ListNode<Tag1>&>(a).unlink();
    EXPECT_EQ(l1.front(), &b);
    EXPECT_EQ(l2.size(), 2u);
}

}  // namespace
}  // namespace keel
