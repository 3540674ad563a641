// Admin tasks of scripts/kafka-local, in one JVM: wait until the broker answers
// a metadata request, create the project's topics idempotently, list topics.
// Compiled once by scripts/kafka-local against the kafka-clients jar it fetched.
//
//   KafkaLocalAdmin ready BOOTSTRAP TIMEOUT_MS [TOPIC:PARTITIONS ...]
//   KafkaLocalAdmin topics BOOTSTRAP TIMEOUT_MS
//
// Exit code 0 on success, 1 with a message on stderr otherwise, 2 on bad usage.

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterOptions;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.DescribeTopicsOptions;
import org.apache.kafka.clients.admin.ListTopicsOptions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.errors.TopicExistsException;

public final class KafkaLocalAdmin {
    private KafkaLocalAdmin() {}

    private static final class Failure extends Exception {
        Failure(String message) {
            super(message);
        }
    }

    public static void main(String[] args) {
        if (args.length < 3 || !(args[0].equals("ready") || args[0].equals("topics"))) {
            System.err.println("usage: KafkaLocalAdmin ready BOOTSTRAP TIMEOUT_MS [TOPIC:PARTITIONS ...]");
            System.err.println("       KafkaLocalAdmin topics BOOTSTRAP TIMEOUT_MS");
            System.exit(2);
        }
        String bootstrap = args[1];
        long deadline;
        try {
            deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(Long.parseLong(args[2]));
        } catch (NumberFormatException e) {
            System.err.println("KafkaLocalAdmin: TIMEOUT_MS must be a number of milliseconds, got '" + args[2] + "'");
            System.exit(2);
            return;
        }
        try {
            if (args[0].equals("ready")) {
                List<NewTopic> topics = new ArrayList<>();
                for (int i = 3; i < args.length; i++) {
                    topics.add(parseTopic(args[i]));
                }
                ready(bootstrap, deadline, topics);
            } else {
                listTopics(bootstrap, deadline);
            }
        } catch (Failure e) {
            System.err.println("kafka-local: " + e.getMessage());
            System.exit(1);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            System.err.println("kafka-local: interrupted");
            System.exit(1);
        }
    }

    private static NewTopic parseTopic(String spec) throws Failure {
        int colon = spec.lastIndexOf(':');
        if (colon <= 0 || colon == spec.length() - 1) {
            throw new Failure("topic spec '" + spec + "' must look like NAME:PARTITIONS");
        }
        try {
            int partitions = Integer.parseInt(spec.substring(colon + 1));
            if (partitions < 1) {
                throw new NumberFormatException();
            }
            return new NewTopic(spec.substring(0, colon), partitions, (short) 1);
        } catch (NumberFormatException e) {
            throw new Failure("topic spec '" + spec + "': partitions must be a positive integer");
        }
    }

    private static long remainingMs(long deadline) {
        return Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime()));
    }

    private static Admin connect(String bootstrap, long deadline) {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.CLIENT_ID_CONFIG, "kafka-local");
        int remaining = (int) Math.min(Integer.MAX_VALUE, remainingMs(deadline));
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, remaining);
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, Math.min(remaining, 5_000));
        props.put(AdminClientConfig.RETRY_BACKOFF_MS_CONFIG, 100);
        props.put(AdminClientConfig.RECONNECT_BACKOFF_MS_CONFIG, 50);
        props.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, 500);
        return Admin.create(props);
    }

    private static <T> T await(KafkaFuture<T> future, long deadline, String what)
            throws Failure, InterruptedException {
        try {
            return future.get(remainingMs(deadline), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            throw new Failure("timed out waiting for " + what);
        } catch (ExecutionException e) {
            Throwable cause = e.getCause() == null ? e : e.getCause();
            throw new Failure(what + " failed: " + cause.getClass().getSimpleName() + ": " + cause.getMessage());
        }
    }

    private static void ready(String bootstrap, long deadline, List<NewTopic> wanted)
            throws Failure, InterruptedException {
        try (Admin admin = connect(bootstrap, deadline)) {
            DescribeClusterResult cluster = admin.describeCluster(
                    new DescribeClusterOptions().timeoutMs((int) Math.min(Integer.MAX_VALUE, remainingMs(deadline))));
            String clusterId = await(cluster.clusterId(), deadline, "the cluster id from " + bootstrap);
            List<Node> nodes = new ArrayList<>(await(cluster.nodes(), deadline, "the broker list from " + bootstrap));
            System.out.println("kafka-local: broker answers metadata requests (cluster id " + clusterId
                    + ", " + nodes.size() + " broker" + (nodes.size() == 1 ? "" : "s") + ")");
            if (wanted.isEmpty()) {
                return;
            }
            Map<String, KafkaFuture<Void>> created = admin.createTopics(wanted).values();
            List<String> failures = new ArrayList<>();
            List<String> existing = new ArrayList<>();
            for (NewTopic topic : wanted) {
                try {
                    created.get(topic.name()).get(remainingMs(deadline), TimeUnit.MILLISECONDS);
                    System.out.println("kafka-local: created topic " + topic.name() + " (" + topic.numPartitions()
                            + " partition" + (topic.numPartitions() == 1 ? "" : "s") + ")");
                } catch (ExecutionException e) {
                    if (e.getCause() instanceof TopicExistsException) {
                        existing.add(topic.name());
                    } else {
                        Throwable cause = e.getCause() == null ? e : e.getCause();
                        failures.add("creating topic " + topic.name() + " failed: " + cause.getMessage());
                    }
                } catch (TimeoutException e) {
                    failures.add("timed out creating topic " + topic.name());
                }
            }
            if (!existing.isEmpty()) {
                Map<String, TopicDescription> described = await(
                        admin.describeTopics(existing, new DescribeTopicsOptions()
                                .timeoutMs((int) Math.min(Integer.MAX_VALUE, remainingMs(deadline))))
                                .allTopicNames(),
                        deadline, "the description of topics " + existing);
                for (NewTopic topic : wanted) {
                    TopicDescription d = described.get(topic.name());
                    if (d == null) {
                        continue;
                    }
                    int have = d.partitions().size();
                    if (have == topic.numPartitions()) {
                        System.out.println("kafka-local: topic " + topic.name() + " already exists (" + have
                                + " partition" + (have == 1 ? "" : "s") + ")");
                    } else {
                        failures.add("topic " + topic.name() + " already exists with " + have
                                + " partitions, expected " + topic.numPartitions()
                                + " (delete it, or restart with `scripts/kafka-local down && scripts/kafka-local up`)");
                    }
                }
            }
            if (!failures.isEmpty()) {
                throw new Failure(String.join("; ", failures));
            }
        }
    }

    private static void listTopics(String bootstrap, long deadline) throws Failure, InterruptedException {
        try (Admin admin = connect(bootstrap, deadline)) {
            int timeout = (int) Math.min(Integer.MAX_VALUE, remainingMs(deadline));
            List<String> names = new ArrayList<>(await(
                    admin.listTopics(new ListTopicsOptions().timeoutMs(timeout)).names(),
                    deadline, "the topic list from " + bootstrap));
            if (names.isEmpty()) {
                System.out.println("(no topics)");
                return;
            }
            Map<String, TopicDescription> described = new TreeMap<>(await(
                    admin.describeTopics(names, new DescribeTopicsOptions().timeoutMs(timeout)).allTopicNames(),
                    deadline, "the description of topics " + names));
            int width = described.keySet().stream().mapToInt(String::length).max().orElse(5);
            System.out.printf("%-" + width + "s  %s%n", "TOPIC", "PARTITIONS");
            for (TopicDescription d : described.values()) {
                System.out.printf("%-" + width + "s  %d%n", d.name(), d.partitions().size());
            }
        }
    }
}
