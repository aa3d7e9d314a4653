// Waits for the local broker to answer a metadata request, then creates the topics listed in
// deploy/local/topics.txt that do not exist yet, all in ONE JVM (each Kafka CLI call costs a
// JVM start of ~1 s, and TopicCommand creates one topic per call).
//
// deploy/local/infra starts it right after the broker, so that this JVM's start overlaps the
// broker's; it polls until the broker answers, and gives up early if the broker process dies.
//
//   java -cp '.cache/kafka/libs/*:.cache/kafka/classes' EnsureTopics \
//        <bootstrap-servers> <topics-file> <timeout-seconds> [<broker-pid>[,<broker-pid>...]]
//
// For the 3-broker cluster (`deploy/local/infra cluster up`), system properties say how many
// brokers must have registered before topics are created, and how they are replicated:
//   -Dgonghui.brokers=3 -Dgonghui.replication.factor=3 -Dgonghui.min.insync.replicas=2
// (defaults 1, 1 and the broker's own min.insync.replicas).
//
// Output on stdout: "READY <epoch-ms>" when the broker first answered, then "created <topic>"
// for each new topic and "WARNING ..." for a topic whose partition count differs from the file.
// Exit status: 0 done, 3 no answer within the timeout, 4 a broker process exited,
// 1 any other error. Errors are printed on stderr as lines starting with "error:".

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterOptions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;

public class EnsureTopics {
    static final int NOT_READY = 3;
    static final int BROKER_DIED = 4;

    public static void main(String[] args) throws Exception {
        if (args.length < 3 || args.length > 4) {
            fail(2, "usage: EnsureTopics <bootstrap-servers> <topics-file> <timeout-seconds> [<broker-pid>,...]");
        }
        Map<String, Integer> wanted = readTopics(Path.of(args[1]));
        long deadline = System.currentTimeMillis() + Long.parseLong(args[2]) * 1000;
        long[] brokerPids = args.length == 4
                ? Arrays.stream(args[3].split(",")).mapToLong(Long::parseLong).toArray()
                : new long[0];
        int brokers = Integer.getInteger("gonghui.brokers", 1);
        short replicationFactor = Short.parseShort(System.getProperty("gonghui.replication.factor", "1"));
        String minInsync = System.getProperty("gonghui.min.insync.replicas");

        Properties config = new Properties();
        config.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        config.put(AdminClientConfig.CLIENT_ID_CONFIG, "gonghui-infra");
        // While the broker starts, its port refuses connections: retry often, not after 1 s.
        config.put(AdminClientConfig.RECONNECT_BACKOFF_MS_CONFIG, 50);
        config.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, 100);
        config.put(AdminClientConfig.RETRY_BACKOFF_MS_CONFIG, 50);
        config.put(AdminClientConfig.RETRY_BACKOFF_MAX_MS_CONFIG, 100);
        config.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 60_000);
        config.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 30_000);

        try (Admin admin = Admin.create(config)) {
            waitUntilAnswered(admin, deadline, brokerPids, brokers);
            System.out.println("READY " + System.currentTimeMillis());
            System.out.flush();

            Set<String> existing = admin.listTopics().names().get();
            List<NewTopic> missing = new ArrayList<>();
            for (Map.Entry<String, Integer> topic : wanted.entrySet()) {
                if (!existing.contains(topic.getKey())) {
                    NewTopic created = new NewTopic(topic.getKey(), topic.getValue(), replicationFactor);
                    if (minInsync != null) {
                        created.configs(Map.of("min.insync.replicas", minInsync));
                    }
                    missing.add(created);
                }
            }
            createAll(admin, missing);
            checkPartitions(admin, wanted, deadline);
        } catch (ExecutionException e) {
            fail(1, String.valueOf(e.getCause()));
        }
    }

    /** A broker answers requests only once it has started completely: this is readiness. A
     * cluster is ready once all its brokers have registered (else a topic replicated on all of
     * them cannot be created yet). */
    static void waitUntilAnswered(Admin admin, long deadline, long[] brokerPids, int brokers)
            throws Exception {
        String last = "no answer yet";
        while (true) {
            try {
                int registered =
                        admin.describeCluster(new DescribeClusterOptions().timeoutMs(1000)).nodes().get().size();
                if (registered >= brokers) {
                    return;
                }
                last = registered + " of " + brokers + " brokers registered";
                Thread.sleep(100);
            } catch (ExecutionException e) {
                last = String.valueOf(e.getCause());
            }
            for (long pid : brokerPids) {
                if (!ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)) {
                    fail(BROKER_DIED, "the broker process " + pid + " exited");
                }
            }
            if (System.currentTimeMillis() > deadline) {
                fail(NOT_READY, "the broker did not answer: " + last);
            }
        }
    }

    /** Parses "name partitions" lines; blank lines and # comments are skipped. */
    static Map<String, Integer> readTopics(Path file) throws Exception {
        Map<String, Integer> topics = new LinkedHashMap<>();
        int lineNo = 0;
        for (String line : Files.readAllLines(file)) {
            lineNo++;
            String text = line.replaceFirst("#.*", "").trim();
            if (text.isEmpty()) {
                continue;
            }
            String[] parts = text.split("\\s+");
            if (parts.length != 2 || !parts[1].matches("[1-9][0-9]*")) {
                fail(1, file + ":" + lineNo + ": expected '<topic> <partitions>', got '" + line + "'");
            }
            topics.put(parts[0], Integer.parseInt(parts[1]));
        }
        return topics;
    }

    /** Creates the missing topics in one request; another `up` racing us is not an error. */
    static void createAll(Admin admin, List<NewTopic> missing) throws Exception {
        if (missing.isEmpty()) {
            return;
        }
        Map<String, KafkaFuture<Void>> results = admin.createTopics(missing).values();
        for (Map.Entry<String, KafkaFuture<Void>> result : results.entrySet()) {
            try {
                result.getValue().get();
                System.out.println("created " + result.getKey());
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof TopicExistsException)) {
                    throw e;
                }
            }
        }
    }

    /** Reports every topic with its partition count; a mismatch is a warning, not a failure. */
    static void checkPartitions(Admin admin, Map<String, Integer> wanted, long deadline)
            throws Exception {
        Map<String, TopicDescription> described;
        while (true) {
            try {
                described = admin.describeTopics(wanted.keySet()).allTopicNames().get();
                break;
            } catch (ExecutionException e) {
                // A new topic reaches every broker's metadata a moment after it was created: in
                // a cluster the broker asked may not know it yet.
                if (!(e.getCause() instanceof UnknownTopicOrPartitionException)
                        || System.currentTimeMillis() > deadline) {
                    throw e;
                }
                Thread.sleep(100);
            }
        }
        for (Map.Entry<String, Integer> topic : wanted.entrySet()) {
            int actual = described.get(topic.getKey()).partitions().size();
            if (actual == topic.getValue()) {
                System.out.printf("ok %s partitions=%d%n", topic.getKey(), actual);
            } else {
                System.out.printf("WARNING %s has %d partitions, topics.txt says %d"
                        + " (partitions cannot shrink: run `deploy/local/infra reset` to recreate)%n",
                        topic.getKey(), actual, topic.getValue());
            }
        }
    }

    static void fail(int status, String message) {
        System.out.flush();
        System.err.println("error: " + message);
        System.exit(status);
    }
}
